"""run_local: `name=value` pairs (JSON where the value parses, a string otherwise), and kfp.local made to pass a
step's outputs into a ParallelFor body."""

import importlib.util
from pathlib import Path

import pytest

RUN_LOCAL = Path(__file__).resolve().parents[2] / "run_local.py"


@pytest.fixture(scope="module")
def run_local():
    # run_local.py is a script at the repository root, not part of an installed package.
    spec = importlib.util.spec_from_file_location("run_local_under_test", RUN_LOCAL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def parse_arguments(run_local):
    return run_local.parse_arguments


@pytest.mark.parametrize(
    ("pair", "expected"),
    [
        pytest.param("rows=500", {"rows": 500}, id="int"),
        pytest.param("min_improvement=0.01", {"min_improvement": 0.01}, id="float"),
        pytest.param("drop_duplicates=false", {"drop_duplicates": False}, id="bool"),
        pytest.param('thresholds={"r2": 0.7}', {"thresholds": {"r2": 0.7}}, id="object"),
        pytest.param("classes=[1, 2]", {"classes": [1, 2]}, id="array"),
        pytest.param("nothing=null", {"nothing": None}, id="null"),
        pytest.param('name="42"', {"name": "42"}, id="quoted-number-stays-text"),
        pytest.param("target=price", {"target": "price"}, id="plain-string"),
        pytest.param("data_uri=data/houses.csv", {"data_uri": "data/houses.csv"}, id="path"),
        pytest.param("deploy_target=none", {"deploy_target": "none"}, id="none-is-text"),
        pytest.param("tracking_uri=", {"tracking_uri": ""}, id="empty-value"),
        pytest.param(
            "data_uri=sample://house-prices?rows=100&seed=3",
            {"data_uri": "sample://house-prices?rows=100&seed=3"},
            id="equals-in-value",
        ),
        pytest.param("query=a=b=c", {"query": "a=b=c"}, id="several-equals"),
        pytest.param("hyperparameters={broken", {"hyperparameters": "{broken"}, id="bad-json-is-text"),
    ],
)
def test_parses_one_pair(parse_arguments, pair, expected):
    assert parse_arguments([pair]) == expected


def test_parses_several_pairs_and_the_last_one_wins(parse_arguments):
    assert parse_arguments(["target=price", "seed=1", "seed=2"]) == {"target": "price", "seed": 2}


def test_no_pairs_give_no_arguments(parse_arguments):
    assert parse_arguments([]) == {}


@pytest.mark.parametrize("pair", ["target", "=price", ""])
def test_malformed_pair_is_named(parse_arguments, pair):
    with pytest.raises(ValueError, match=rf"argument '{pair}' is not of the form name=value"):
        parse_arguments(["seed=1", pair])


def test_a_parallel_for_body_gets_the_outputs_of_earlier_steps(run_local, tmp_path):
    from kfp import dsl, local

    # The module has no `from __future__ import annotations`: KFP reads these annotations as types.
    @dsl.component(base_image="python:3.11")
    def resolve_task() -> str:
        return "regression"

    @dsl.component(base_image="python:3.11")
    def describe(task: str, candidate: dict) -> str:
        return f"{task}:{candidate['model_type']}"

    @dsl.component(base_image="python:3.11")
    def join(descriptions: list) -> str:
        return ",".join(descriptions)

    @dsl.pipeline
    def loop(candidates: list = [{"model_type": "linear"}, {"model_type": "random_forest"}]):  # noqa: B006
        task = resolve_task()
        with dsl.ParallelFor(candidates) as candidate:
            described = describe(task=task.output, candidate=candidate)
        join(descriptions=dsl.Collected(described.output))

    run_local.fix_loop_inputs_of_kfp_local()
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path))

    run = loop()

    # Without the fix kfp.local 2.17 hands each iteration its loop item as `task`.
    joined = next(path for path in tmp_path.glob("loop-*/join/executor_output.json"))
    assert '"regression:linear,regression:random_forest"' in joined.read_text(), run
