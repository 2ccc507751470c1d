"""Scaffolds a component in the KFP catalogue's layout, with its tests: `make new-component NAME=verb_noun`.

    python new_component.py score_rows

writes

    components/score_rows/__init__.py              the package, its docstring only
    components/score_rows/component.py             the thin @dsl.component (compile.py and the docs discover it)
    components/score_rows/logic.py                 the step's decisions in plain Python, no kfp import
    components/score_rows/tests/test_logic.py      tests of logic.py
    components/score_rows/tests/test_component.py  the component function called with local artifacts

and `make new-component` then runs docs/reference.py, which writes the component's README.md and metadata.yaml.
The new component works as generated (a Dataset in, the chosen columns of it out, with Metrics), so it compiles
and its tests pass before you change anything; docs/writing-a-component.md walks through making it yours. Its
description is the example's until you replace the text in PLACEHOLDERS: docs/reference.py names what is left, and
its --check (make lint) fails until none is.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from string import Template

REPO_ROOT = Path(__file__).resolve().parent
NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)+")
MAX_NAME_LENGTH = 30  # every generated line then fits ruff's 120 columns (tests/pipelines/test_adding_a_component.py)
# Names the generated code imports beside the component's own function (its test_component.py imports both): a
# component so named would hide one of them, and its scaffolded tests would fail.
IMPORTED_NAMES = ("read_dataset", "write_dataset")
# pytest collects a function named test* and a class named Test* wherever a test module imports it: the scaffolded
# tests import the component function and its <Name>Error class, so such a name would warn at every test run.
PYTEST_PREFIX = "test"
# The example step's own description, by file: {file: (its text, what to write there instead)}. It must not ship
# as the description of a real step (the docs, metadata.yaml and the KFP UI show the component's docstring), so
# docs/reference.py --check (make lint, pre-commit, the tests) refuses a component that still holds any of it.
PLACEHOLDERS = {
    "__init__.py": ("(say here what your step does)", "the package docstring: what the step does"),
    "component.py": (
        "Keeps the chosen columns of a dataset, in the order given.",
        "the function docstring's first line: what the step does (the docs and the KFP UI show it)",
    ),
    "logic.py": ("replace `transform` with your step.", "the module docstring: what its decisions are"),
}

INIT = Template('''\
"""$title: keeps the chosen columns of a dataset ${init_placeholder}."""
''')

LOGIC = Template('''\
"""$title: the step's decisions, in plain Python (no kfp import).

Tested in tests/test_logic.py beside it. As generated it keeps the chosen columns of a table, in the order given:
${logic_placeholder}
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pandas as pd


class ${error}(ValueError):
    """The step cannot run on its input; the message names the column or parameter at fault."""


def transform(frame: pd.DataFrame, columns: Sequence[str] = ()) -> pd.DataFrame:
    """Returns `columns` of `frame` in that order (every column when `columns` is empty); rows are unchanged."""
    if not columns:
        return frame
    unknown = [column for column in columns if column not in frame.columns]
    if unknown:
        message = f"parameter columns: {unknown} not in the data; its columns are {list(frame.columns)}"
        raise ${error}(message)
    repeated = sorted(column for column, count in Counter(columns).items() if count > 1)
    if repeated:
        raise ${error}(f"parameter columns: {repeated} named more than once")
    return frame[list(columns)]
''')

COMPONENT = Template('''\
"""The $name KFP component.

It reads its dataset, calls logic.py, and writes the result and its metrics.
"""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from components._image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def $name(
    dataset: Input[Dataset],
    result: Output[Dataset],
    metrics: Output[Metrics],
    columns: list = [],  # noqa: B006 (KFP reads the default from the signature and never mutates it)
) -> int:
    """${component_placeholder}

    Args:
        dataset: The rows to process (Parquet).
        result: The processed rows (Parquet).
        metrics: Rows and columns written.
        columns: Columns to keep, in this order; empty keeps every column.

    Returns:
        Number of rows written.
    """
    # Everything the body uses is imported inside it: KFP compiles the body alone into the component.
    from components._common.datasets import read_dataset, write_dataset
    from components.$name.logic import transform

    processed = transform(read_dataset(dataset.path), columns)
    result.metadata.update(write_dataset(processed, result.path))
    metrics.log_metric("rows", len(processed))
    metrics.log_metric("columns", processed.shape[1])
    return len(processed)
''')

UNIT_TEST = Template('''\
"""$name's logic: plain functions on small in-memory data."""

from __future__ import annotations

import pandas as pd
import pytest

from components.$name.logic import $error, transform


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"], "c": [0.5, None, 1.5]})


def test_keeps_the_chosen_columns_in_the_order_given(frame):
    result = transform(frame, ["c", "a"])

    assert list(result.columns) == ["c", "a"]
    pd.testing.assert_frame_equal(result, frame[["c", "a"]])


def test_no_columns_keeps_every_column(frame):
    pd.testing.assert_frame_equal(transform(frame, []), frame)


def test_an_unknown_column_is_named(frame):
    with pytest.raises($error, match=r"\\['price'\\] not in the data"):
        transform(frame, ["a", "price"])


def test_a_repeated_column_is_named(frame):
    with pytest.raises($error, match=r"\\['a'\\] named more than once"):
        transform(frame, ["a", "b", "a"])
''')

COMPONENT_TEST = Template('''\
"""$name called as the pipeline calls it (``python_func``).

Its artifacts are local files (the `artifact` fixture).
"""

from __future__ import annotations

import pandas as pd
from kfp import dsl

from components._common.datasets import read_dataset, write_dataset
from components.$name.component import $name


def test_writes_the_result_dataset_and_its_metrics(artifact):
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    dataset = artifact(dsl.Dataset, "dataset")
    write_dataset(frame, dataset.path)
    result = artifact(dsl.Dataset, "result")
    metrics = artifact(dsl.Metrics, "metrics")

    rows = $name.python_func(dataset=dataset, result=result, metrics=metrics, columns=["b"])

    assert rows == 3
    pd.testing.assert_frame_equal(read_dataset(result.path), frame[["b"]])
    assert result.metadata["rows"] == 3
    assert metrics.metadata == {"rows": 3, "columns": 1}
''')


class ScaffoldError(ValueError):
    """The component cannot be scaffolded; the message names the problem."""


def check_name(name: str, root: Path = REPO_ROOT) -> None:
    """A component name is a new, lowercase `verb_noun` Python identifier (it names the package and the function)."""
    if not NAME_PATTERN.fullmatch(name):
        raise ScaffoldError(
            f"NAME={name!r}: use lowercase verb_noun words joined by underscores, e.g. score_rows or explain_model"
        )
    if name in IMPORTED_NAMES:
        raise ScaffoldError(
            f"NAME={name!r}: the scaffolded code imports components._common.datasets.{name} beside the component, "
            "which this name would hide; choose another name"
        )
    if name.startswith(PYTEST_PREFIX):
        raise ScaffoldError(
            f"NAME={name!r}: pytest collects names beginning with {PYTEST_PREFIX!r} as tests, and the scaffolded "
            "tests import the component function and its error class; choose a name that does not, e.g. check_rows"
        )
    if len(name) > MAX_NAME_LENGTH:
        raise ScaffoldError(f"NAME={name!r}: {len(name)} characters, more than {MAX_NAME_LENGTH}; use a shorter name")
    if (root / "components" / name).exists():
        raise ScaffoldError(f"NAME={name!r}: components/{name}/ already exists")


def placeholders(directory: Path) -> list[str]:
    """What is left to replace in the component at `directory`: one line per file still holding the scaffold's
    placeholder text, naming the file, the text and what to write instead."""
    found = []
    for file_name, (text, instead) in PLACEHOLDERS.items():
        path = directory / file_name
        if path.is_file() and text in path.read_text(encoding="utf-8"):
            found.append(
                f"components/{directory.name}/{file_name} still says {text!r} (the scaffold's placeholder): "
                f"replace it with {instead}"
            )
    return found


def files(name: str) -> dict[Path, str]:
    """{path relative to the repository root: content} of a new component named `name`."""
    values = {
        "name": name,
        "title": name.replace("_", " ").capitalize(),
        "error": "".join(word.capitalize() for word in name.split("_")) + "Error",
        "init_placeholder": PLACEHOLDERS["__init__.py"][0],
        "component_placeholder": PLACEHOLDERS["component.py"][0],
        "logic_placeholder": PLACEHOLDERS["logic.py"][0],
    }
    directory = Path("components", name)
    return {
        directory / "__init__.py": INIT.substitute(values),
        directory / "component.py": COMPONENT.substitute(values),
        directory / "logic.py": LOGIC.substitute(values),
        directory / "tests" / "test_logic.py": UNIT_TEST.substitute(values),
        directory / "tests" / "test_component.py": COMPONENT_TEST.substitute(values),
    }


def scaffold(name: str, root: Path = REPO_ROOT) -> list[Path]:
    """Writes the component's files under `root` (all in the new components/<name>/: check_name refuses a name whose
    directory exists, so nothing is overwritten); returns their paths."""
    check_name(name, root)
    planned = files(name)
    for path, content in planned.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(content, encoding="utf-8")
    return list(planned)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("name", help="the component's verb_noun name, e.g. score_rows")
    args = parser.parse_args()
    try:
        written = scaffold(args.name)
    except ScaffoldError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    print(
        f"\nNext: put your step's decisions in components/{args.name}/logic.py (tests in its tests/), its inputs and\n"
        "outputs in component.py, what it does where the lines below say (make lint refuses it until then), wire\n"
        f"it into a pipeline in pipelines/ (import it from components.{args.name}.component), then\n"
        "`make docs compile` and\n"
        f'`make test PYTEST_ARGS="components/{args.name} tests/unit tests/pipelines"` (a few minutes).\n'
        "Guide: docs/writing-a-component.md"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
