"""docs/components.md and docs/pipeline-parameters.md: generated from the code, complete, and never stale."""

# No `from __future__ import annotations`: KFP reads the test component's annotations as types.
import pytest
from kfp import dsl

from components import discover
from docs import reference
from pipelines import PIPELINES


def test_generated_docs_are_current():
    stale = reference.stale_files()
    assert not stale, f"{', '.join(map(str, stale))} out of date with the code: run `make docs` and commit"


def test_a_changed_or_missing_file_is_reported_stale(tmp_path):
    for path, content in reference.render().items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(content, encoding="utf-8")
    assert reference.stale_files(tmp_path) == []

    (tmp_path / reference.COMPONENTS_FILE).write_text("edited by hand\n", encoding="utf-8")
    (tmp_path / reference.PIPELINE_PARAMETERS_FILE).unlink()
    assert reference.stale_files(tmp_path) == [reference.COMPONENTS_FILE, reference.PIPELINE_PARAMETERS_FILE]


@pytest.mark.parametrize("name", sorted(discover()))
def test_every_input_and_output_of_every_component_is_described(name):
    component = discover()[name]
    inputs, outputs = reference.ports(component, component.python_func)
    undescribed = [port.name for port in inputs + outputs if not port.description]
    assert not undescribed, f"components/{name}/component.py: document {undescribed} in the docstring"


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_every_pipeline_parameter_is_described(name):
    inputs, _ = reference.ports(PIPELINES[name], PIPELINES[name].pipeline_func)
    assert inputs
    assert not [port.name for port in inputs if not port.description]


def test_types_defaults_and_every_kind_of_description_are_read():
    @dsl.component(base_image="python:3.11")
    def count_rows(
        rows: dsl.Input[list[dsl.Dataset]], report: dsl.Output[dsl.Markdown], limit: int = 10, label: str = ""
    ) -> int:
        """Counts rows.

        Args:
            rows: The datasets.
            report: What was counted.
            limit: At most this many, and a
                second line.
            label: Shown in the report.

        Returns:
            The number of rows.
        """
        return 0

    inputs, outputs = reference.ports(count_rows, count_rows.python_func)

    assert inputs == [
        reference.Port("rows", "List[Dataset]", "The datasets.", "required"),
        reference.Port("limit", "Integer", "At most this many, and a\nsecond line.", "`10`"),
        reference.Port("label", "String", "Shown in the report.", '`""`'),
    ]
    assert outputs == [
        reference.Port("report", "Markdown", "What was counted."),
        reference.Port("Output", "Integer", "The number of rows."),
    ]


def test_named_outputs_are_read_from_the_returns_section():
    _, outputs = reference.ports(discover()["ingest_data"], discover()["ingest_data"].python_func)
    described = {port.name: port.description for port in outputs}

    assert described["rows"] == "Number of rows read."
    assert described["content_sha256"].startswith("sha256 of the data itself")
