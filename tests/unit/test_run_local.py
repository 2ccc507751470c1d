"""run_local: `name=value` pairs (JSON where the value parses, a string otherwise), kfp.local made to pass a
step's outputs into a ParallelFor body and to leave an unset optional (deprecated) parameter to its component's
default, what a run changes in this process put back after it, and a deploy_target=local run ending with the
champion served and how to call it (a Python OIP client, then the curl; both run against a real server in
tests/serving/test_deploy_local.py)."""

import builtins
import importlib.util
import json
import os
import sys
import warnings
from pathlib import Path

import pytest

import model_bundle

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
        pytest.param("source_uri=data/houses.csv", {"source_uri": "data/houses.csv"}, id="path"),
        pytest.param("deploy_target=none", {"deploy_target": "none"}, id="none-is-text"),
        pytest.param("tracking_uri=", {"tracking_uri": ""}, id="empty-value"),
        pytest.param(
            "source_uri=sample://house-prices?rows=100&seed=3",
            {"source_uri": "sample://house-prices?rows=100&seed=3"},
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


def test_an_empty_candidates_list_is_refused_naming_the_parameter_before_any_step_runs(run_local, tmp_path):
    with pytest.raises(ValueError, match=r"parameter candidates is empty: give at least one candidate"):
        run_local.run("training", {"candidates": []}, tmp_path)

    assert not (tmp_path / "pipeline_root").exists()


@pytest.mark.parametrize("pipeline", ["training", "monitoring", "rollback"])
@pytest.mark.parametrize(
    ("model_name", "problem"),
    [("team/houses", "is no registered model name: .*cannot contain '/'"), ("h" * 300, "at most 255 bytes")],
)
def test_a_model_name_the_registry_cannot_take_is_refused_before_any_step_runs(
    run_local, tmp_path, pipeline, model_name, problem
):
    # register_model would refuse it only after ingest, validation, training, evaluation and the gate.
    with pytest.raises(ValueError, match=rf"^parameter model_name '{model_name[:40]}'.*{problem}"):
        run_local.run(pipeline, {"model_name": model_name}, tmp_path)

    assert not (tmp_path / "pipeline_root").exists()


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

    # kfp.local's loop iterations can leave print() indenting, and local.init configures the whole process.
    with run_local.process_state_restored(), run_local.kfp_local_fixes():
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path))
        run = loop()

    # Without the fix kfp.local 2.17 hands each iteration its loop item as `task`.
    joined = next(path for path in tmp_path.glob("loop-*/join/executor_output.json"))
    assert '"regression:linear,regression:random_forest"' in joined.read_text(), run


def test_an_optional_parameter_left_unset_reaches_its_component_as_the_components_default(
    run_local, tmp_path, monkeypatch
):
    """As on a cluster: a deprecated pipeline parameter is `= None` (optional, no default); unset, the component
    gets its own default, None (kfp.local 2.17 alone fails on it); set, the component gets the value."""
    from kfp import dsl

    import pipelines

    @dsl.component(base_image="python:3.11")
    def record(path: str, new: str = "", old: str = None, policy: dict = None, seconds: int = None):  # noqa: RUF013
        with open(path, "a") as stream:
            stream.write(f"{new!r} {old!r} {policy!r} {seconds!r}\n")

    @dsl.pipeline
    def renamed(path: str, new: str = "default", old: str = None, policy: dict = None, seconds: int = None):  # noqa: RUF013
        with dsl.If(new != "skip"):  # inside a dsl.If body too, as deploy_model is
            record(path=path, new=new, old=old, policy=policy, seconds=seconds)

    monkeypatch.setitem(pipelines.PIPELINES, "renamed", renamed)
    calls = tmp_path / "calls"

    run_local.run("renamed", {"path": str(calls)}, tmp_path)
    run_local.run("renamed", {"path": str(calls), "old": "given", "policy": {"key": 1}, "seconds": 30}, tmp_path)

    assert calls.read_text().splitlines() == ["'default' None None None", "'default' 'given' {'key': 1.0} 30"]


def test_the_kfp_local_fixes_are_undone_after_the_block_even_when_it_fails(run_local):
    from kfp.local import executor_input_utils
    from kfp.local.orchestrator import task_spec_utils
    from kfp.local.orchestrator.orchestrator_utils import OrchestratorUtils

    def state():
        return (
            task_spec_utils.create_parameter_loop_iteration_task_spec,
            executor_input_utils.construct_executor_input,
            vars(OrchestratorUtils)["join_user_inputs_and_defaults"],
        )

    before = state()
    with pytest.raises(RuntimeError, match="a step failed"), run_local.kfp_local_fixes():
        assert all(patched is not original for patched, original in zip(state(), before, strict=True))
        raise RuntimeError("a step failed")

    assert all(now is original for now, original in zip(state(), before, strict=True))


class _FakePipeline:
    """Stands in for a compiled pipeline: records its arguments and changes what a real run changes in this process:
    kfp.local indents print() (as it can leave it when loop iterations run at once), the steps' registry calls set
    MLflow's URIs, and a warning filter is added."""

    def __init__(self, state_dir: Path):
        self.calls = []
        self.state_dir = state_dir

    @staticmethod
    def pipeline_func(model_name: str = "house-prices", serving_port: int = 9000, deploy_target: str = "none"):
        """A pipeline's parameters and their defaults."""

    def __call__(self, **arguments):
        import mlflow

        from components._common.registry import STATE_DIR_ENV

        self.calls.append({**arguments, "during the run": os.environ.get(STATE_DIR_ENV)})
        original = builtins.print
        builtins.print = lambda *args, **kwargs: original("    ", *args, **kwargs)
        mlflow.set_tracking_uri(f"sqlite:///{self.state_dir / 'mlflow.db'}")
        mlflow.set_registry_uri(f"sqlite:///{self.state_dir / 'mlflow.db'}")
        warnings.filterwarnings("ignore", message="left behind by the run")


@pytest.fixture
def fake_pipeline(monkeypatch, tmp_path):
    import pipelines

    fake = _FakePipeline(tmp_path)
    monkeypatch.setitem(pipelines.PIPELINES, "fake", fake)
    return fake


def test_run_returns_the_arguments_over_the_pipelines_defaults(run_local, fake_pipeline, tmp_path):
    used = run_local.run("fake", {"serving_port": 9412, "deploy_target": "local"}, tmp_path)

    assert fake_pipeline.calls == [{"serving_port": 9412, "deploy_target": "local", "during the run": str(tmp_path)}]
    assert used == {"model_name": "house-prices", "serving_port": 9412, "deploy_target": "local"}


def test_print_is_plain_again_after_a_run(run_local, fake_pipeline, tmp_path):
    printing = builtins.print

    run_local.run("fake", {}, tmp_path)

    assert builtins.print is printing


def test_a_run_puts_back_what_it_changed_in_this_process(run_local, fake_pipeline, tmp_path):
    import mlflow
    from kfp.local import config

    environment = dict(os.environ)
    filters = list(warnings.filters)
    tracking, registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    local_config = config.LocalExecutionConfig.instance

    run_local.run("fake", {}, tmp_path)

    # The run itself set the state directory for its steps, OMP_NUM_THREADS and kfp.local's configuration.
    assert fake_pipeline.calls[0]["during the run"] == str(tmp_path)
    assert dict(os.environ) == environment
    assert warnings.filters == filters
    assert (mlflow.get_tracking_uri(), mlflow.get_registry_uri()) == (tracking, registry)
    assert config.LocalExecutionConfig.instance is local_config


def test_mlflow_uris_set_in_the_block_are_put_back_unset(run_local, tmp_path, monkeypatch):
    import mlflow
    from mlflow.tracking._tracking_service import utils as tracking_utils

    for variable in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(tracking_utils, "_tracking_uri", None)
    assert "mlflow" in sys.modules

    with run_local.mlflow_uris_restored():
        mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
        mlflow.set_registry_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
        assert os.environ["MLFLOW_TRACKING_URI"] == f"sqlite:///{tmp_path / 'mlflow.db'}"

    assert tracking_utils._tracking_uri is None
    assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_REGISTRY_URI" not in os.environ
    assert str(tmp_path) not in mlflow.get_registry_uri()


# --- after a run with deploy_target=local, the champion is served ----------------------------------------------


def _local_server(model_dir: Path, http_port: int, metrics_port: int):
    from serving.local_server import LocalServer

    return LocalServer(
        4242, str(model_dir), "ab" * 32, http_port, metrics_port, http_port + 500, "/tmp/server.log", "flats"
    )


@pytest.fixture
def model_dir(tmp_path) -> Path:
    """A model directory with the card fields the printed curl needs."""
    card = model_bundle.ModelCard(
        target="price", task="regression", features=[{"name": "size", "type": "numeric"}], input_example={"size": 80.5}
    )
    (tmp_path / "model.json").write_text(json.dumps(card.to_json()))
    return tmp_path


@pytest.fixture
def after_run(run_local, monkeypatch):
    """main() with the pipeline run replaced: it 'succeeds' with these arguments, and each call of
    serve_champion_locally is recorded and answered by ``serve``."""
    from components.deploy_model import logic

    state = {"used": {}, "calls": [], "state_dirs": [], "serve": None}

    def serve_champion_locally(model_name, tracking_uri="", http_port=9000, metrics_port=6000):
        from components._common.registry import STATE_DIR_ENV

        state["calls"].append((model_name, tracking_uri, http_port, metrics_port))
        state["state_dirs"].append(os.environ.get(STATE_DIR_ENV))
        return state["serve"](model_name, http_port, metrics_port)

    monkeypatch.setattr(run_local, "run", lambda name, arguments, state_dir: state["used"])
    monkeypatch.setattr(logic, "serve_champion_locally", serve_champion_locally)
    return state


LOCAL_RUN = {
    "model_name": "flats",
    "tracking_uri": "",
    "deploy_target": "local",
    "serving_port": 9412,
    "metrics_port": 6412,
}


@pytest.mark.parametrize(
    ("started", "line"),
    [
        (True, "flats v3, the champion, was not served on port 9412: started it"),
        (False, "flats v3, the champion, is served on port 9412"),
    ],
    ids=["started", "kept"],
)
def test_a_local_run_ends_with_its_models_champion_served_and_a_curl(
    run_local, after_run, model_dir, capsys, tmp_path, started, line
):
    from components.deploy_model.logic import LocalChampion

    after_run["used"] = LOCAL_RUN
    after_run["serve"] = lambda name, port, metrics: LocalChampion(
        name, "3", _local_server(model_dir, port, metrics), started
    )

    assert run_local.main(["training", "--state-dir", str(tmp_path), "model_name=flats"]) == 0

    assert after_run["calls"] == [("flats", "", 9412, 6412)]
    # The champion is looked up and served from the run's state directory, which is not left set afterwards.
    assert after_run["state_dirs"] == [str(tmp_path.resolve())]
    out = capsys.readouterr().out
    assert line in out.splitlines()
    assert "response = await client.infer('http://127.0.0.1:9412', request, model_name='flats')" in out
    assert "metrics:     http://127.0.0.1:6412/metrics" in out
    # What the run ends with: the OIP curl of the champion, after the Python example.
    last = out.rstrip().splitlines()[-2:]
    assert (
        last[0] == "curl -s -X POST http://127.0.0.1:9412/v2/models/flats/infer -H 'Content-Type: application/json' \\"
    )
    assert '"inputs": [{"name": "size", "shape": [1], "datatype": "FP64", "data": [80.5]}]' in last[1]
    assert out.index("from kserve import InferenceRESTClient") < out.index("curl -s -X POST")


def test_a_local_run_without_a_champion_says_so_and_succeeds(run_local, after_run, capsys, tmp_path):
    from components.deploy_model.logic import NoChampionError

    def no_champion(name, port, metrics):
        raise NoChampionError("flats has no version with the alias 'champion'")

    after_run["used"] = LOCAL_RUN
    after_run["serve"] = no_champion

    assert run_local.main(["training", "--state-dir", str(tmp_path)]) == 0

    assert "nothing to serve: flats has no version with the alias 'champion'" in capsys.readouterr().out


def test_a_champion_that_cannot_be_served_fails_the_command(run_local, after_run, capsys, tmp_path):
    from components.deploy_model.logic import DeploymentError

    def broken(name, port, metrics):
        raise DeploymentError("deploying flats v3 failed: port 9412 is already in use by another program")

    after_run["used"] = LOCAL_RUN
    after_run["serve"] = broken

    assert run_local.main(["training", "--state-dir", str(tmp_path)]) == 1

    assert "error: serving the champion: deploying flats v3 failed: port 9412" in capsys.readouterr().err


@pytest.mark.parametrize("target", ["none", "kubernetes"])
def test_other_targets_serve_nothing_locally(run_local, after_run, capsys, tmp_path, target):
    after_run["used"] = {**LOCAL_RUN, "deploy_target": target}

    assert run_local.main(["training", "--state-dir", str(tmp_path)]) == 0

    assert after_run["calls"] == []
    assert "pipeline 'training' succeeded" in capsys.readouterr().out


@pytest.mark.parametrize("pipeline", ["training", "monitoring", "rollback"])
def test_a_run_draws_no_mlflow_progress_bars(run_local, monkeypatch, tmp_path, pipeline):
    # MLflow draws one for every registry download, in every step (which inherit this process's environment).
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)  # put back as it was after the test
    seen = []

    def run(name, arguments, state_dir):
        seen.append(os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"))
        return {"deploy_target": "none"}

    monkeypatch.setattr(run_local, "run", run)
    monkeypatch.setattr(run_local, "monitoring_verdict", lambda run_dir: "")

    run_local.main([pipeline, "--state-dir", str(tmp_path)])

    assert seen == ["false"]


def test_progress_bars_asked_for_are_kept(run_local, monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "true")
    seen = []
    monkeypatch.setattr(
        run_local, "run", lambda *_: seen.append(os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"]) or {}
    )

    assert run_local.main(["training", "--state-dir", str(tmp_path)]) == 0

    assert seen == ["true"]


def test_a_failed_run_ends_with_the_error_the_step_failed_with(run_local, monkeypatch, tmp_path):
    from kfp import dsl

    import pipelines

    @dsl.component(base_image="python:3.11")
    def check_rows(rows: int):
        if rows < 10:
            raise ValueError(f"only {rows} rows:\n- [rows] at least 10 are needed")

    @dsl.pipeline
    def small(rows: int = 3):
        check_rows(rows=rows)

    monkeypatch.setitem(pipelines.PIPELINES, "small", small)
    with pytest.raises(RuntimeError) as failed:
        run_local.run("small", {}, tmp_path)

    # kfp.local's line names the step; the step's own error (not its module path, not colour codes) comes last.
    lines = str(failed.value).splitlines()
    assert "Inner task failed: 'check-rows'" in lines[0]
    assert lines[1:] == ["ValueError: only 3 rows:", "- [rows] at least 10 are needed"]
    assert "\x1b[" not in str(failed.value)


def test_the_step_error_is_the_last_traceback_in_the_output(run_local):
    output = [
        "    Traceback (most recent call last):",
        '      File "a.py", line 1, in <module>',
        "        first()",
        "    KeyError: 'size_sqm'",
        "    ",
        "    The above exception was the direct cause of the following exception:",
        "    ",
        "    Traceback (most recent call last):",
        '      File "b.py", line 9, in check',
        "        raise DataValidationError(text)",
        "    components.validate_data.logic.DataValidationError: data validation failed:",
        "    - [columns] column 'size_sqm' is missing",
        "    ",
        "13:27:50.031 - ERROR - Task \x1b[96m'validate-data'\x1b[0m finished with status \x1b[91mFAILURE\x1b[0m",
    ]

    assert run_local.step_error(output) == (
        "DataValidationError: data validation failed:\n- [columns] column 'size_sqm' is missing"
    )
    assert run_local.step_error(["no traceback here", "13:27:50 - ERROR - Task 'x' failed"]) is None


# --- after a monitoring run, its verdict ---------------------------------------------------------------------------


def _finished_monitoring_run(run_dir: Path, drifted: list[str], approved: bool | None) -> Path:
    """A monitoring run's outputs as kfp.local leaves them: detect_drift's summary (rendered by detect_drift) and
    output parameters and, when the retraining ran (``approved`` not None), the gate's and register_model's."""
    from components.detect_drift.logic import DriftPolicy, DriftResult, FeatureDrift, render_summary

    def step(name: str, parameters: dict, **files: str) -> None:
        (run_dir / name).mkdir(parents=True)
        (run_dir / name / "executor_output.json").write_text(json.dumps({"parameterValues": parameters}))
        for file, text in files.items():
            (run_dir / name / file).write_text(text)

    features = [
        FeatureDrift(name, "numeric", "wasserstein", 0.5 if name in drifted else 0.01, 0.1, name in drifted)
        for name in ("size_sqm", "rooms", "age_years")
    ]
    result = DriftResult(features, 2000, 600, DriftPolicy())
    step("detect-drift", {"Output": result.dataset_drift, "fairness_alert": False}, summary=render_summary(result))
    if approved is not None:
        verdict = "approved" if approved else "rejected"
        reasons = f"# Challenger {verdict}\n\n**Decided by:** Comparison with champion v1: {verdict}.\n\n- passed x\n"
        step("gate-model", {"Output": approved}, reasons=reasons)
        step("register-model", {"model_version": "2"})
    return run_dir


@pytest.mark.parametrize(
    ("drifted", "approved", "lines"),
    [
        (
            ["size_sqm", "age_years"],
            True,
            [
                "drift verdict: Drift detected. 2 of 3 features drifted (67%: size_sqm, age_years); the data drifts "
                "from 50% (`drift_share`). 600 new rows against 2000 reference rows (a sample of the champion's "
                "training rows).",
                "retraining: ran; the gate approved the retrained model, registered as version 2. Decided by: "
                "Comparison with champion v1: approved.",
            ],
        ),
        (
            ["size_sqm", "age_years"],
            False,
            [
                "retraining: ran; the gate rejected the retrained model: the champion stays. Decided by: Comparison "
                "with champion v1: rejected."
            ],
        ),
        (
            ["rooms"],
            None,
            [
                "drift verdict: No drift. 1 of 3 features drifted (33%: rooms); the data drifts from 50% "
                "(`drift_share`). 600 new rows against 2000 reference rows (a sample of the champion's training rows).",
                "retraining: not run (no drift)",
            ],
        ),
    ],
    ids=["approved", "rejected", "no-drift"],
)
def test_the_monitoring_verdict_says_what_drifted_and_what_the_retraining_did(
    run_local, tmp_path, drifted, approved, lines
):
    run_dir = _finished_monitoring_run(tmp_path / "monitoring-pipeline-1", drifted, approved)

    verdict = run_local.monitoring_verdict(run_dir).splitlines()

    assert set(lines) <= set(verdict), verdict
    assert verdict[-1] == f"drift summary: {run_dir / 'detect-drift' / 'summary'}"


def test_a_monitoring_run_ends_with_its_verdict(run_local, monkeypatch, capsys, tmp_path):
    state_dir = tmp_path / "state"
    _finished_monitoring_run(state_dir / "pipeline_root" / "monitoring-pipeline-0", [], None)  # an earlier run

    def finished(name, arguments, state):
        _finished_monitoring_run(state / "pipeline_root" / "monitoring-pipeline-1", ["size_sqm", "rooms"], True)
        return {"deploy_target": "none"}

    monkeypatch.setattr(run_local, "run", finished)

    assert run_local.main(["monitoring", "--state-dir", str(state_dir)]) == 0

    out = capsys.readouterr().out.splitlines()
    succeeded = next(i for i, line in enumerate(out) if line.startswith("pipeline 'monitoring' succeeded"))
    assert out[succeeded + 1].startswith(
        "drift verdict: Drift detected. 2 of 3 features drifted (67%: size_sqm, rooms)"
    )
    assert out[succeeded + 2].startswith("retraining: ran; the gate approved the retrained model, registered as v")
    assert out[-1].endswith("monitoring-pipeline-1/detect-drift/summary")
