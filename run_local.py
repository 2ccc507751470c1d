"""Runs a pipeline on this machine with kfp.local: no cluster, every step a subprocess in this environment.

    python run_local.py training|monitoring|rollback [name=value ...]
    python run_local.py history model_name=NAME [tracking_uri=URI]

Arguments are parsed like `kfp run create` does: a value that parses as JSON is taken as JSON (numbers,
booleans, objects), anything else as a string, e.g.
    python run_local.py training source_uri=data/houses.csv target=price gate_policy='{"thresholds": {"r2": 0.7}}'
A parameter declared `str` takes the value as written, even one that parses as a number (`to_version=2`).

`rollback` serves a registered version again through the training pipeline's deploy step (by default the champion
before the current one; refusals name the problem), e.g.
    python run_local.py rollback model_name=house-prices deploy_target=local reason="v3 answers slowly"
    python run_local.py rollback model_name=house-prices to_version=2 deploy_target=local
`history` is no pipeline: it prints the model's promotion history (every move of `champion` and `challenger`:
when, from and to which version, what moved it and why) with the aliases the registry has now.

Artifacts go under local_state/pipeline_root, the MLflow registry is local_state/mlflow.db
(change the directory with --state-dir or $KFP_MLOPS_STATE_DIR).

With deploy_target=local a run ends with the champion of model_name served on serving_port, whether this run
deployed a new one or its gate kept the champion (then the server already running it stays, or it is started),
and prints how to call it: a Python example with an OIP client, then the curl.
"""

from __future__ import annotations

import argparse
import builtins
import contextlib
import copy
import inspect
import json
import os
import re
import sys
import warnings
from collections import deque
from pathlib import Path

from components._common.registry import STATE_DIR_ENV, mlflow_uris_restored

HISTORY = "history"  # the one command that is no pipeline
HISTORY_PARAMETERS = ("model_name", "tracking_uri")
PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


def parse_arguments(
    pairs: list[str],
    text_parameters: frozenset[str] | set[str] = frozenset(),
    float_parameters: frozenset[str] | set[str] = frozenset(),
) -> dict:
    """``name=value`` pairs as a dict, each value JSON where it parses; a parameter in ``text_parameters`` keeps its
    text unless it is a quoted JSON string (a `str` pipeline parameter: KFP refuses a number for it), and a whole
    number given for one in ``float_parameters`` is a float (`validation_fraction=0`: KFP refuses an int for a
    `float` parameter)."""
    arguments = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not name:
            raise ValueError(f"argument {pair!r} is not of the form name=value")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        if name in text_parameters and not isinstance(parsed, str):
            parsed = value
        elif name in float_parameters and type(parsed) is int:  # not bool, a subclass of int
            parsed = float(parsed)
        arguments[name] = parsed
    return arguments


def _parameters_declared(pipeline_name: str, annotation: type) -> set[str]:
    """The parameters of pipeline ``pipeline_name`` declared ``annotation`` (none for an unknown name, which run
    refuses)."""
    from pipelines import PIPELINES

    if pipeline_name not in PIPELINES:
        return set()
    parameters = inspect.signature(PIPELINES[pipeline_name].pipeline_func).parameters
    return {name for name, parameter in parameters.items() if parameter.annotation is annotation}


def text_parameters(pipeline_name: str) -> set[str]:
    """The parameters of pipeline ``pipeline_name`` declared `str`."""
    return _parameters_declared(pipeline_name, str)


def float_parameters(pipeline_name: str) -> set[str]:
    """The parameters of pipeline ``pipeline_name`` declared `float`."""
    return _parameters_declared(pipeline_name, float)


class _NotSet:
    """The value kfp.local holds for an optional pipeline input that was not given and has no default."""

    def __repr__(self) -> str:
        return "<not set>"

    def __deepcopy__(self, memo) -> _NotSet:
        return self  # kfp.local deep-copies arguments; the marker is recognised by identity


NOT_SET = _NotSet()


def _keeping_task_outputs(build):
    """kfp.local's loop-iteration builder, made to keep the task-output inputs of a dsl.ParallelFor body.

    Its builder replaces *every* task-output parameter of a loop with the loop item (it assumes the only one is the
    list iterated over), so inside the loop `validate.outputs["task"]` would arrive as a candidate configuration.
    This keeps those inputs as the original spec has them, except the items of the loop itself.
    """

    def build_keeping_task_outputs(original_task_spec, loop_item, loop_task_name):
        iteration = build(original_task_spec, loop_item, loop_task_name)
        items = original_task_spec.parameter_iterator.items.input_parameter
        for name, spec in original_task_spec.inputs.parameters.items():
            if spec.HasField("task_output_parameter") and name != items:
                iteration.inputs.parameters[name].CopyFrom(spec)
        return iteration

    return build_keeping_task_outputs


def _joining_unset_optional_inputs(join):
    """kfp.local's joining of a DAG's arguments with its defaults, made to accept an optional input without a value.

    A deprecated pipeline parameter is declared `= None` (isOptional, no default). KFP's backend passes such an
    input on as null and a component's optional input that resolves to null gets the component's own default;
    kfp.local 2.17 instead fails ("Unknown value type"). This holds NOT_SET for it, which the executor input then
    leaves out (see _leaving_out_unset_inputs), so the component gets its default, None, as on a cluster.
    """

    def join_user_inputs_and_defaults(dag_arguments, dag_inputs_spec):
        unset = {
            name: NOT_SET
            for name, spec in dag_inputs_spec.parameters.items()
            if name not in dag_arguments and spec.is_optional and not spec.HasField("default_value")
        }
        return join({**dag_arguments, **unset}, dag_inputs_spec)

    return join_user_inputs_and_defaults


def _leaving_out_unset_inputs(construct):
    """kfp.local's executor input builder, made to leave out the inputs that have no value: those holding NOT_SET,
    and an optional input without a default that the task does not set (kfp.local would pass it as an empty value,
    which it then fails to read as an `int`). As on KFP's backend, the step then gets the function's default."""

    def construct_executor_input(component_spec, arguments, *args, **kwargs):
        given = {name: value for name, value in arguments.items() if value is not NOT_SET}
        executor_input = construct(component_spec, given, *args, **kwargs)
        values = executor_input.inputs.parameter_values
        for name in [name for name, value in values.items() if value.WhichOneof("kind") is None]:
            del values[name]
        return executor_input

    return construct_executor_input


@contextlib.contextmanager
def kfp_local_fixes():
    """kfp.local 2.17 made to run the pipelines as a cluster does while the block runs, put back as it was after.

    Inside a dsl.ParallelFor body a step gets the outputs of earlier steps (not the loop item), and an optional
    pipeline parameter left unset (a deprecated one) reaches its component as the component's default. Clusters
    need neither: the compiled YAML is right, and KFP's backend resolves both.
    """
    from kfp.local import executor_input_utils
    from kfp.local.orchestrator import task_spec_utils
    from kfp.local.orchestrator.orchestrator_utils import OrchestratorUtils

    patched = [
        (task_spec_utils, "create_parameter_loop_iteration_task_spec", _keeping_task_outputs),
        (executor_input_utils, "construct_executor_input", _leaving_out_unset_inputs),
    ]
    saved = [(owner, name, vars(owner)[name]) for owner, name, _ in patched]
    join = vars(OrchestratorUtils)["join_user_inputs_and_defaults"]  # a classmethod: restored as the descriptor
    saved.append((OrchestratorUtils, "join_user_inputs_and_defaults", join))
    try:
        for owner, name, fix in patched:
            setattr(owner, name, fix(getattr(owner, name)))
        joined = _joining_unset_optional_inputs(OrchestratorUtils.join_user_inputs_and_defaults)
        OrchestratorUtils.join_user_inputs_and_defaults = staticmethod(joined)
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


@contextlib.contextmanager
def process_state_restored():
    """What a local run changes in this process, put back after the block: environment variables, warning filters,
    print (kfp.local indents it while a step runs), kfp.local's configuration and MLflow's URIs."""
    from kfp.local import config

    environment = dict(os.environ)
    printing = builtins.print
    local_config = config.LocalExecutionConfig.instance
    try:
        with warnings.catch_warnings(), mlflow_uris_restored():
            yield
    finally:
        # Loop iterations running at once restore print out of order and can leave it indenting everything after.
        builtins.print = printing
        config.LocalExecutionConfig.instance = local_config
        for name in set(os.environ) - set(environment):
            del os.environ[name]
        os.environ.update(environment)


@contextlib.contextmanager
def without_retries(pipeline):
    """Sets the retry policies of ``pipeline``'s steps aside while the block runs, and puts them back after.

    They are meant for a cluster's transient registry and object-store errors (pipelines/_kubernetes.py), but
    kfp.local honours them too: a step failing on bad input would fail three more times, after minutes of backoff.
    """
    spec = getattr(pipeline, "pipeline_spec", None)  # the very spec kfp.local runs, nested pipelines included
    dags = [] if spec is None else [spec.root.dag, *(c.dag for c in spec.components.values() if c.HasField("dag"))]
    retried = [
        (task, copy.deepcopy(task.retry_policy))
        for dag in dags
        for task in dag.tasks.values()
        if task.HasField("retry_policy")
    ]
    for task, _ in retried:
        task.ClearField("retry_policy")
    try:
        yield pipeline
    finally:
        for task, policy in retried:
            task.retry_policy.CopyFrom(policy)


class _OutputTail:
    """Stands in for sys.stdout while a run prints: passes everything through and keeps the last lines, where
    kfp.local has printed a failed step's traceback."""

    def __init__(self, stream, lines: int = 400):
        self.stream = stream
        self.lines: deque[str] = deque(maxlen=lines)
        self._partial = ""

    def write(self, text: str) -> int:
        *done, self._partial = (self._partial + text).split("\n")
        self.lines.extend(done)
        return self.stream.write(text)

    def __getattr__(self, name):  # flush, isatty, encoding, fileno: the real stream's
        return getattr(self.stream, name)


_ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")
_QUALIFIED_ERROR = re.compile(r"^(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_]\w*(?::|$))")


def step_error(lines) -> str | None:
    """The exception a failed step ended with (type and message, the type without its module), from the output
    kfp.local printed: its last traceback. None when the output holds no traceback."""
    lines = [_ANSI_COLOUR.sub("", line) for line in lines]
    starts = [i for i, line in enumerate(lines) if line.strip() == "Traceback (most recent call last):"]
    if not starts:
        return None
    indent = lines[starts[-1]][: len(lines[starts[-1]]) - len(lines[starts[-1]].lstrip())]  # kfp.local's, per step
    message: list[str] = []
    for line in lines[starts[-1] + 1 :]:
        if line.strip() and not line.startswith(indent):
            break  # kfp.local's own log lines follow the step's output
        text = line[len(indent) :]
        if message or (text.strip() and not text.startswith(" ")):  # frames are indented, the exception is not
            message.append(text)
    while message and not message[-1].strip():
        message.pop()
    return _QUALIFIED_ERROR.sub("", "\n".join(message)) if message else None


def run(pipeline_name: str, arguments: dict, state_dir: Path) -> dict:
    """Runs ``pipeline_name`` with ``arguments``; raises RuntimeError naming the failed step and ending with the
    error it failed with (the traceback above it in the output is kfp.local's long report).

    Returns the arguments the run used: ``arguments`` over the pipeline's defaults. What the run changes in this
    process (environment, kfp.local, MLflow's URIs, print) is put back when it returns.
    """
    from kfp import local

    from pipelines import PIPELINES, check_arguments

    if pipeline_name not in PIPELINES:
        raise ValueError(f"unknown pipeline {pipeline_name!r}; available: {sorted(PIPELINES)}")
    pipeline = PIPELINES[pipeline_name]
    accepted = inspect.signature(pipeline.pipeline_func).parameters
    unknown = sorted(set(arguments) - set(accepted))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for pipeline {pipeline_name!r}; accepted: {sorted(accepted)}")
    if arguments.get("candidates") == []:
        # kfp.local ends an empty dsl.ParallelFor with no outputs, so the step after the loop fails on a missing task
        # ("task 'for-loop-1' not found") before select_model can say what is wrong.
        raise ValueError(
            'parameter candidates is empty: give at least one candidate, e.g. \'candidates=[{"model_type": "linear"}]\''
        )
    check_arguments(arguments)
    with process_state_restored(), kfp_local_fixes(), without_retries(pipeline):
        os.environ[STATE_DIR_ENV] = str(state_dir)  # read by the steps (registry, local serving)
        # kfp.local ignores base_image locally but warns when its name lacks "python"; ours is a Python image.
        warnings.filterwarnings("ignore", message=".*non-Python base image.*", category=RuntimeWarning)
        # Each step's CPU and memory settings are for a cluster; kfp.local warns, step by step, that it ignores them.
        warnings.filterwarnings(
            "ignore", message=".*have no effect in the current local runner.*", category=UserWarning
        )
        # kfp.local trains two loop iterations at once; OpenMP estimators (HistGradientBoosting) that each take every
        # core then slow each other down many times over, so each step gets its share of the cores.
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 2) // 2)))
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(state_dir / "pipeline_root"))
        output = _OutputTail(sys.stdout)
        try:
            with contextlib.redirect_stdout(output):
                pipeline(**arguments)
        except RuntimeError as failure:
            cause = step_error(output.lines)
            if cause is None:
                raise
            raise RuntimeError(f"{_ANSI_COLOUR.sub('', str(failure))}\n{cause}") from failure
    defaults = {name: p.default for name, p in accepted.items() if p.default is not inspect.Parameter.empty}
    return {**defaults, **arguments}


MONITORING = "monitoring"  # the pipeline whose verdict is printed after its run


def _step_outputs(step_dir: Path) -> dict:
    """A finished step's output parameters, as kfp.local records them next to its artifacts."""
    return json.loads((step_dir / "executor_output.json").read_text()).get("parameterValues", {})


def monitoring_verdict(run_dir: Path) -> str:
    """What a finished monitoring run decided, read from its steps' outputs under ``run_dir``: the drift verdict
    with the features that drifted (the first two paragraphs of detect_drift's summary), the fairness alert, and
    whether the retraining run ran and what its gate decided."""
    drift = run_dir / "detect-drift"
    headline, counts = (drift / "summary").read_text().split("\n\n")[:2]
    lines = [f"drift verdict: {headline.removeprefix('# ')}. {counts}"]
    if _step_outputs(drift).get("fairness_alert"):
        lines.append(
            "fairness alert: a fairness gap of the champion on the batch is beyond its limit (see the summary)"
        )
    gate = run_dir / "gate-model"
    if not gate.is_dir():
        lines.append("retraining: not run (no drift)")
    else:
        reasons = (gate / "reasons").read_text().splitlines()
        decided = next((line for line in reasons if line.startswith("**Decided by:**")), "").replace("**", "")
        if _step_outputs(gate).get("Output"):
            version = _step_outputs(run_dir / "register-model").get("model_version")
            outcome = f"the gate approved the retrained model, registered as version {version}"
        else:
            outcome = "the gate rejected the retrained model: the champion stays"
        lines.append(f"retraining: ran; {outcome}. {decided}".rstrip())
    lines.append(f"drift summary: {drift / 'summary'}")
    return "\n".join(lines)


def serve_champion(arguments: dict, state_dir: Path):
    """The champion of ``model_name`` served on ``serving_port``, after a run with ``deploy_target=local``.

    The deploy step runs only when the gate approves a challenger; when the gate keeps the champion nothing would
    start a server for it (after ``make stop``, say). Raises NoChampionError when no version has become the
    champion, DeploymentError when the champion cannot be served.
    """
    from components.deploy_model.logic import serve_champion_locally

    with process_state_restored():
        os.environ[STATE_DIR_ENV] = str(state_dir)  # where the registry and the served models are
        return serve_champion_locally(
            arguments["model_name"],
            arguments.get("tracking_uri", ""),
            http_port=int(arguments["serving_port"]),
            metrics_port=int(arguments["metrics_port"]),
        )


def show_history(arguments: dict, state_dir: Path) -> str:
    """The promotion history of ``model_name`` as a table, with the aliases the registry has now (a move made
    outside the suite shows as such); ValueError naming an unknown model or argument."""
    from components._common import history

    unknown = sorted(set(arguments) - set(HISTORY_PARAMETERS))
    if unknown:
        raise ValueError(f"unknown argument(s) {unknown} for {HISTORY!r}; accepted: {list(HISTORY_PARAMETERS)}")
    model_name, tracking_uri = str(arguments.get("model_name", "")), str(arguments.get("tracking_uri", ""))
    if not model_name:
        raise ValueError(f"{HISTORY!r} needs model_name=<registered model name>")
    from mlflow.exceptions import MlflowException

    with process_state_restored():
        os.environ[STATE_DIR_ENV] = str(state_dir)  # where the local registry is (never created by reading)
        # A command at a terminal: a registry that does not answer is named in seconds, not after MLflow's 7 retries
        # (4 minutes).
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        try:
            moves = history.read(tracking_uri, model_name)
            return history.table(moves, history.current_aliases(tracking_uri, model_name))
        except (MlflowException, OSError) as error:  # requests' connection errors are OSErrors
            raise ValueError(
                f"cannot read the promotion history of {model_name!r} {history.unreadable_at(tracking_uri, error)}"
            ) from error


def python_example(server) -> str:
    """A ready-to-paste shell block predicting the model card's input example with kserve's InferenceRESTClient
    (a standard Open Inference Protocol client, installed in this environment): the same OIP table as the curl,
    one one-row input per column (a missing value stays null, which the server reads as missing).
    """
    import model_bundle
    from serving import local_server

    inputs = local_server.example_request(model_bundle.read_card(server.model_dir))["inputs"]
    columns = ",\n".join(f"    ({i['name']!r}, {i['datatype']!r}, {i['data'][0]!r})" for i in inputs)
    interpreter = Path(sys.executable)
    if interpreter.is_relative_to(Path.cwd()):
        interpreter = interpreter.relative_to(Path.cwd())
    return f"""{interpreter} - <<'EOF'
import asyncio
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

columns = [
{columns},
]
request = InferRequest(
    model_name={server.model_name!r},
    infer_inputs=[InferInput(name, [1], datatype, [value]) for name, datatype, value in columns],
    parameters={{"content_type": "pd"}},
)

async def main():
    async with InferenceRESTClient(RESTConfig(protocol="v2")) as client:
        response = await client.infer({server.base_url!r}, request, model_name={server.model_name!r})
    print({{output.name: output.data for output in response.outputs}})

asyncio.run(main())
EOF"""


def without_progress_bars() -> None:
    """Turns MLflow's artifact progress bars off in this process and the steps it starts (which inherit its
    environment), unless $MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR asks for them: MLflow draws one for every registry
    download, dozens a run, which bury the run's own output and push the curl it ends with up the screen."""
    os.environ.setdefault(PROGRESS_BAR, "false")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog="arguments: name=value pairs, JSON where it parses; a text parameter keeps its text, and a whole "
        "number for a float parameter is a float",
    )
    parser.add_argument("pipeline", help=f"pipeline name (training, monitoring, rollback), or {HISTORY}")
    parser.add_argument("arguments", nargs="*", help="pipeline arguments as name=value")
    parser.add_argument("--state-dir", type=Path, default=Path(os.environ.get(STATE_DIR_ENV, "local_state")))
    args = parser.parse_intermixed_args(argv)
    state_dir = args.state_dir.resolve()
    without_progress_bars()
    if args.pipeline == HISTORY:
        try:
            print(show_history(parse_arguments(args.arguments, set(HISTORY_PARAMETERS)), state_dir))
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        return 0
    pipeline_root = state_dir / "pipeline_root"
    earlier_runs = set(pipeline_root.glob("*"))
    try:
        arguments = parse_arguments(args.arguments, text_parameters(args.pipeline), float_parameters(args.pipeline))
        used = run(args.pipeline, arguments, state_dir)
    except (ValueError, RuntimeError) as error:
        print(f"\nerror: {error}", file=sys.stderr)
        return 1
    print(
        f"\npipeline {args.pipeline!r} succeeded; artifacts under {pipeline_root}, "
        f"registry at {state_dir / 'mlflow.db'}"
    )
    if args.pipeline == MONITORING:
        # kfp.local writes each run under a directory of its own; another run in this state directory meanwhile
        # would make this one's ambiguous.
        new_runs = sorted(set(pipeline_root.glob("*")) - earlier_runs)
        if len(new_runs) == 1:
            print(monitoring_verdict(new_runs[0]))
        else:
            print(f"drift verdict: {len(new_runs)} runs finished under {pipeline_root}; see their detect-drift/summary")
    if used.get("deploy_target") != "local":
        return 0
    from components.deploy_model.logic import DeploymentError, NoChampionError
    from serving import local_server

    try:
        served = serve_champion(used, state_dir)
    except NoChampionError as note:
        # A gate may rightly approve nothing (e.g. thresholds on a first run): the run itself succeeded.
        print(f"nothing to serve: {note}")
        return 0
    except DeploymentError as error:
        print(f"\nerror: serving the champion: {error}", file=sys.stderr)
        return 1
    champion = f"{served.model_name} v{served.version}, the champion,"
    if served.started:
        print(f"{champion} was not served on port {served.server.http_port}: started it")
    else:
        print(f"{champion} is served on port {served.server.http_port}")
    # The curl comes last (in describe), so it is what the run ends with.
    print(f"try it from Python (kserve's OIP client):\n{python_example(served.server)}")
    print(local_server.describe(served.server))
    return 0


if __name__ == "__main__":
    sys.exit(main())
