"""Every step's pod settings as the compiled YAML gives them to a cluster: CPU and memory requests and limits (the
memory limits overridable per run), a timeout, and a retry policy only on register_model, whose own failures are the
registry's or the object store's and which a rerun completes; every other step retries its transient errors inside."""

# No `from __future__ import annotations`: KFP reads the annotations of the components below as types.
import re
from pathlib import Path

import pytest
import yaml
from kfp import compiler, dsl

import run_local
from components import discover
from components.deploy_model.logic import MAX_WAIT_SECONDS
from pipelines import PIPELINES
from pipelines._kubernetes import (
    DATA_MEMORY_LIMIT,
    DEFAULT_POD_SETTINGS,
    MODEL_MEMORY_LIMIT,
    POD_SETTINGS,
    RETRIES,
    RETRY_BACKOFF,
    RETRY_BACKOFF_FACTOR,
    RETRY_WINDOW,
    pod_settings,
    use_pod_settings,
)
from tests.pipelines.test_compile import EXPECTED_COMPONENTS

# Written out, not read from the table: which steps may run twice is a decision (see POD_SETTINGS), not a figure.
# A step that judges its inputs (data, a policy, what to roll back) fails the same way on a rerun: retried, it would
# report bad data only after three more runs and 3.5 minutes of backoff.
RETRIED_STEPS = {"register_model"}
MEMORY_LIMIT_PARAMETERS = {
    DATA_MEMORY_LIMIT.parameter: DATA_MEMORY_LIMIT,
    MODEL_MEMORY_LIMIT.parameter: MODEL_MEMORY_LIMIT,
}
# What the deploy step's pod needs besides its own wait: start (image pull), loading the model, the rollback.
DEPLOY_MARGIN_SECONDS = 600
QUANTITY = re.compile(r"^(?P<number>[0-9.]+)(?P<unit>m|Ki|Mi|Gi|Ti|K|M|G|T)?$")
UNITS = {
    None: 1,
    "m": 1e-3,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "K": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
}


def _quantity(text: str) -> float:
    match = QUANTITY.match(text)
    assert match, f"{text!r} is not a Kubernetes quantity"
    return float(match["number"]) * UNITS[match["unit"]]


def _compile(pipeline, path: Path) -> tuple[dict, dict]:
    """(PipelineSpec, the kubernetes platform's executors) of the pipeline compiled as a cluster gets it."""
    compiler.Compiler().compile(pipeline, str(path))
    spec, *platforms = [document for document in yaml.safe_load_all(path.read_text()) if document]
    executors = [platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"] for platform in platforms]
    return spec, executors[0] if executors else {}


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory) -> dict[str, tuple[dict, dict]]:
    directory = tmp_path_factory.mktemp("compiled")
    return {name: _compile(pipeline, directory / f"{name}.yaml") for name, pipeline in PIPELINES.items()}


@pytest.fixture(params=sorted(PIPELINES))
def compiled(request, pipelines) -> tuple[dict, dict]:
    return pipelines[request.param]


def _dags(spec: dict) -> dict[str, dict]:
    """Every DAG by name: the root, nested pipelines, loop and condition bodies."""
    return {"root": spec["root"]["dag"], **{name: c["dag"] for name, c in spec["components"].items() if "dag" in c}}


def _steps(spec: dict) -> list[tuple[str, str, dict, str]]:
    """(DAG name, task name, task, component name) of every container task, nested ones too."""
    return [
        (dag_name, task_name, task, _component_name(spec, task))
        for dag_name, dag in _dags(spec).items()
        for task_name, task in dag["tasks"].items()
        if "executorLabel" in spec["components"][task["componentRef"]["name"]]
    ]


def _executor(spec: dict, task: dict) -> str:
    return spec["components"][task["componentRef"]["name"]]["executorLabel"]


def _component_name(spec: dict, task: dict) -> str:
    """The Python function the step runs: its component's name (task and component names get suffixes such as
    `-2` when a nested pipeline uses a component again)."""
    arguments = spec["deploymentSpec"]["executors"][_executor(spec, task)]["container"]["args"]
    return arguments[arguments.index("--function_to_execute") + 1]


def _pipeline_parameters_reaching(spec: dict, dag_name: str, parameter: str) -> set[str]:
    """The pipeline parameters whose value reaches input `parameter` of DAG `dag_name`, through every nesting."""
    if dag_name == "root":
        return {parameter} & set(spec["root"]["inputDefinitions"]["parameters"])
    reaching = set()
    for parent, dag in _dags(spec).items():
        for task in dag["tasks"].values():
            if task["componentRef"]["name"] == dag_name:
                source = task["inputs"]["parameters"].get(parameter, {}).get("componentInputParameter")
                if source:
                    reaching |= _pipeline_parameters_reaching(spec, parent, source)
    return reaching


def test_the_table_covers_every_step_of_the_project_and_names_only_components():
    assert EXPECTED_COMPONENTS <= set(POD_SETTINGS) <= set(discover())
    assert {name for name, settings in POD_SETTINGS.items() if settings.retry} == RETRIED_STEPS


@pytest.mark.parametrize("name", sorted(POD_SETTINGS))
def test_requests_fit_within_limits(name):
    settings = POD_SETTINGS[name]
    # Kubernetes refuses a pod whose request exceeds its limit.
    assert _quantity(settings.cpu_request) <= _quantity(settings.cpu_limit), name
    assert _quantity(settings.memory_request) <= _quantity(settings.memory_limit.default), name
    assert settings.timeout_seconds > 0, name


def test_every_executor_requests_and_limits_cpu_and_memory_as_the_table_says(compiled):
    spec, _ = compiled
    steps = _steps(spec)
    assert {_executor(spec, task) for _, _, task, _ in steps} == set(spec["deploymentSpec"]["executors"])
    for _, task_name, task, component in steps:
        settings = pod_settings(component)
        resources = spec["deploymentSpec"]["executors"][_executor(spec, task)]["container"]["resources"]
        assert resources["resourceCpuRequest"] == settings.cpu_request, task_name
        assert resources["resourceCpuLimit"] == settings.cpu_limit, task_name
        assert resources["resourceMemoryRequest"] == settings.memory_request, task_name
        parameter = settings.memory_limit.parameter
        expected_limit = (
            f"{{{{$.inputs.parameters['pipelinechannel--{parameter}']}}}}"
            if parameter
            else settings.memory_limit.default
        )
        assert resources["resourceMemoryLimit"] == expected_limit, task_name


def test_the_memory_limit_parameters_reach_their_steps_through_every_nesting(compiled):
    spec, _ = compiled
    overridden = 0
    for dag_name, task_name, task, component in _steps(spec):
        parameter = pod_settings(component).memory_limit.parameter
        if parameter is None:
            continue
        source = task["inputs"]["parameters"][f"pipelinechannel--{parameter}"]["componentInputParameter"]
        assert _pipeline_parameters_reaching(spec, dag_name, source) == {parameter}, task_name
        overridden += 1
    assert overridden >= 2  # the rollback pipeline's two steps at least


def test_every_task_has_the_tables_timeout(compiled):
    spec, platform = compiled
    for _, task_name, task, component in _steps(spec):
        timeout = platform[_executor(spec, task)]["activeDeadlineSeconds"]
        assert int(timeout) == pod_settings(component).timeout_seconds, task_name


def test_only_register_model_retries_with_backoff(compiled):
    spec, _ = compiled
    retried = set()
    for _, task_name, task, component in _steps(spec):
        if component in RETRIED_STEPS:
            assert task["retryPolicy"] == {
                "maxRetryCount": RETRIES,
                "backoffDuration": RETRY_BACKOFF,
                "backoffFactor": RETRY_BACKOFF_FACTOR,
                "backoffMaxDuration": RETRY_WINDOW,
            }, task_name
            retried.add(component)
        else:
            assert "retryPolicy" not in task, task_name
    # The training pipeline registers (the monitoring pipeline through its nested retraining); rollback does not.
    assert retried == (set() if spec["pipelineInfo"]["name"] == "rollback-pipeline" else {"register_model"})
    assert RETRIES >= 1 and RETRY_BACKOFF_FACTOR > 1  # exponential backoff


def test_the_memory_limit_parameters_default_to_the_tables_figures(compiled):
    spec, _ = compiled
    declared = spec["root"]["inputDefinitions"]["parameters"]
    # Each parameter some step's limit is (the rollback pipeline's steps all load the model: no data limit).
    used = {pod_settings(component).memory_limit.parameter for *_, component in _steps(spec)} - {None}
    assert used
    for name, limit in ((name, MEMORY_LIMIT_PARAMETERS[name]) for name in sorted(used)):
        assert declared[name]["parameterType"] == "STRING"
        assert declared[name]["defaultValue"] == limit.default
        # The UI's help text, from the docstring.
        assert "Kubernetes quantity" in " ".join(declared[name]["description"].split())


def test_the_deploy_steps_timeout_outlasts_its_wait_and_the_parameter_says_so(pipelines):
    spec, _ = pipelines["training"]
    wait = spec["root"]["inputDefinitions"]["parameters"]["wait_timeout_seconds"]
    timeout = POD_SETTINGS["deploy_model"].timeout_seconds
    assert wait["defaultValue"] + DEPLOY_MARGIN_SECONDS <= timeout
    documented = re.search(
        r"at most (\d+): the step's pod is stopped after (\d+) s", " ".join(wait["description"].split())
    )
    assert documented, wait["description"]
    assert int(documented[2]) == timeout
    assert wait["defaultValue"] <= int(documented[1]) <= timeout - DEPLOY_MARGIN_SECONDS
    # The bound documented is the one the step enforces.
    assert int(documented[1]) == MAX_WAIT_SECONDS


@dsl.component(base_image="python:3.11")
def score_rows(rows: int) -> int:
    return rows


def test_a_step_without_an_entry_gets_the_default_settings_and_no_retry(tmp_path):
    @dsl.pipeline
    def yours(data_memory_limit: str = DATA_MEMORY_LIMIT.default):
        score_rows(rows=3)
        use_pod_settings(data_memory_limit=data_memory_limit)

    spec, platform = _compile(yours, tmp_path / "yours.yaml")
    [(_, _, task, component)] = _steps(spec)
    assert component not in POD_SETTINGS
    resources = spec["deploymentSpec"]["executors"][_executor(spec, task)]["container"]["resources"]
    assert resources["resourceCpuRequest"] == DEFAULT_POD_SETTINGS.cpu_request
    assert resources["resourceCpuLimit"] == DEFAULT_POD_SETTINGS.cpu_limit
    assert resources["resourceMemoryRequest"] == DEFAULT_POD_SETTINGS.memory_request
    assert resources["resourceMemoryLimit"] == "{{$.inputs.parameters['pipelinechannel--data_memory_limit']}}"
    assert int(platform[_executor(spec, task)]["activeDeadlineSeconds"]) == DEFAULT_POD_SETTINGS.timeout_seconds
    assert "retryPolicy" not in task


def test_a_step_whose_memory_limit_parameter_the_pipeline_lacks_is_named():
    with pytest.raises(ValueError, match=r"'score-rows'.*pipeline parameter 'data_memory_limit'"):

        @dsl.pipeline
        def forgetful():
            score_rows(rows=3)
            use_pod_settings()


@dsl.component(base_image="python:3.11")
def fail_on_bad_input(attempts_file: str):
    with open(attempts_file, "a") as attempts:
        attempts.write("attempt\n")
    raise ValueError("bad input")


def test_a_local_run_does_not_retry_a_failing_step_and_the_compiled_policy_stays(tmp_path, monkeypatch):
    @dsl.pipeline
    def failing(attempts_file: str):
        fail_on_bad_input(attempts_file=attempts_file).set_retry(
            num_retries=RETRIES, backoff_duration=RETRY_BACKOFF, backoff_factor=RETRY_BACKOFF_FACTOR
        )

    monkeypatch.setitem(PIPELINES, "failing", failing)
    attempts = tmp_path / "attempts"

    with pytest.raises(RuntimeError, match="fail-on-bad-input"):
        run_local.run("failing", {"attempts_file": str(attempts)}, tmp_path)

    assert attempts.read_text() == "attempt\n"  # once, not after minutes of backoff
    spec, _ = _compile(failing, tmp_path / "failing.yaml")
    assert spec["root"]["dag"]["tasks"]["fail-on-bad-input"]["retryPolicy"]["maxRetryCount"] == RETRIES
