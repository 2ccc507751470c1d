"""Every pipeline compiles to YAML that KFP accepts, and every component YAML loads on its own."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format
from kfp import components as kfp_components
from kfp.pipeline_spec import pipeline_spec_pb2

from compile import compile_all
from components import discover
from components._image import COMPONENTS_IMAGE
from pipelines import PIPELINES

EXPECTED_COMPONENTS = {
    "ingest_data",
    "validate_data",
    "prepare_data",
    "train_model",
    "select_model",
    "evaluate_model",
    "gate_model",
    "register_model",
    "deploy_model",
    "detect_drift",
}
# Every component but the monitoring one is a step of the training pipeline.
TRAINING_STEPS = EXPECTED_COMPONENTS - {"detect_drift"}
# Steps with side effects or that read live state must never be served from the cache.
# ingest-data reads a URI whose content can change between runs (KFP keys the cache on the URI alone).
UNCACHED_TASKS = {"ingest-data", "validate-data", "gate-model", "register-model", "deploy-model"}


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("build")
    compile_all(directory)
    return directory


def _documents(path: Path) -> list[dict]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def _tasks(spec: dict) -> dict[str, dict]:
    """Every container task of the root DAG and of nested DAGs (dsl.If bodies), by task name."""
    dags = [spec["root"]["dag"]] + [c["dag"] for c in spec["components"].values() if "dag" in c]
    return {
        name: task
        for dag in dags
        for name, task in dag["tasks"].items()
        if "executorLabel" in spec["components"][task["componentRef"]["name"]]
    }


def test_every_stage_is_discovered():
    assert set(discover()) >= EXPECTED_COMPONENTS


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_pipeline_yaml_parses_strictly_as_pipeline_spec(build_dir, name):
    path = build_dir / f"{PIPELINES[name].pipeline_func.__name__}.yaml"
    documents = _documents(path)
    # Unknown fields raise ParseError: the YAML holds nothing the KFP backend would not understand.
    spec = json_format.ParseDict(documents[0], pipeline_spec_pb2.PipelineSpec())
    assert spec.pipeline_info.name
    for platform in documents[1:]:
        json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())


@pytest.mark.parametrize("name", sorted(discover()))  # yours too, once it is in components/
def test_component_yaml_loads_for_reuse(build_dir, name):
    loaded = kfp_components.load_component_from_file(str(build_dir / "components" / f"{name}.yaml"))
    assert loaded.name == name.replace("_", "-")
    assert loaded.component_spec.inputs == discover()[name].component_spec.inputs
    assert loaded.component_spec.outputs == discover()[name].component_spec.outputs


def test_training_pipeline_runs_every_stage_on_the_components_image_without_pip(build_dir):
    spec = _documents(build_dir / "training_pipeline.yaml")[0]
    assert {name.replace("_", "-") for name in TRAINING_STEPS} <= set(_tasks(spec))  # and any step you add
    executors = spec["deploymentSpec"]["executors"]
    for name, executor in executors.items():
        container = executor["container"]
        assert container["image"] == COMPONENTS_IMAGE, name
        command = " ".join(container.get("command", []) + container.get("args", []))
        assert "pip install" not in command, f"{name} installs packages at run time"


def test_side_effecting_steps_are_never_cached(build_dir):
    tasks = _tasks(_documents(build_dir / "training_pipeline.yaml")[0])
    for name in UNCACHED_TASKS:
        assert not tasks[name].get("cachingOptions", {}).get("enableCache", False), name
    assert tasks["train-model"]["cachingOptions"].get("enableCache") is True


def test_deploy_runs_only_when_the_gate_approves(build_dir):
    spec = _documents(build_dir / "training_pipeline.yaml")[0]
    condition_tasks = [task for task in spec["root"]["dag"]["tasks"].values() if "triggerPolicy" in task]
    assert len(condition_tasks) == 1
    assert "gate-model-Output" in condition_tasks[0]["triggerPolicy"]["condition"]
    body = spec["components"][condition_tasks[0]["componentRef"]["name"]]["dag"]["tasks"]
    assert set(body) == {"deploy-model"}


def test_candidates_train_in_a_parallel_for_and_the_best_is_selected_from_all(build_dir):
    spec = _documents(build_dir / "training_pipeline.yaml")[0]
    root = spec["root"]["dag"]["tasks"]
    loop = next(task for task in root.values() if "parameterIterator" in task)
    assert loop["parameterIterator"]["items"]["inputParameter"] == "pipelinechannel--candidates"
    assert loop["iteratorPolicy"]["parallelismLimit"] == 4
    body = spec["components"][loop["componentRef"]["name"]]["dag"]["tasks"]
    assert set(body) == {"train-model"}
    item = loop["parameterIterator"]["itemInput"]
    assert body["train-model"]["inputs"]["parameters"]["candidate"]["componentInputParameter"] == item
    selected = root["select-model"]["inputs"]["artifacts"]["models"]["taskOutputArtifact"]
    assert selected["producerTask"] == next(name for name, task in root.items() if task is loop)
    assert spec["components"]["comp-select-model"]["inputDefinitions"]["artifacts"]["models"]["isArtifactList"]
    defaults = spec["root"]["inputDefinitions"]["parameters"]["candidates"]["defaultValue"]
    assert [candidate["model_type"] for candidate in defaults] == ["hist_gradient_boosting", "random_forest", "linear"]
    # Everything after selection works on the winner only.
    for step in ("evaluate-model", "gate-model", "register-model"):
        model = root[step]["inputs"]["artifacts"]["model"]["taskOutputArtifact"]
        assert model == {"outputArtifactKey": "model", "producerTask": "select-model"}, step


@pytest.mark.parametrize(
    ("component", "output", "schema_title"),
    [
        ("evaluate-model", "metrics", "system.Metrics"),
        ("evaluate-model", "classification_metrics", "system.ClassificationMetrics"),
        ("evaluate-model", "report", "system.HTML"),
        ("gate-model", "reasons", "system.Markdown"),
        ("gate-model", "metrics", "system.Metrics"),
        ("select-model", "leaderboard", "system.Markdown"),
        ("validate-data", "report", "system.Markdown"),
        ("prepare-data", "cleaning_report", "system.Markdown"),
    ],
)
def test_reports_are_artifacts_of_the_types_the_kfp_ui_renders(build_dir, component, output, schema_title):
    spec = _documents(build_dir / "training_pipeline.yaml")[0]
    outputs = spec["components"][f"comp-{component}"]["outputDefinitions"]["artifacts"]
    assert outputs[output]["artifactType"]["schemaTitle"] == schema_title


def test_monitoring_retrains_through_the_training_pipeline_only_on_drift(build_dir):
    spec = _documents(build_dir / "monitoring_pipeline.yaml")[0]
    root = spec["root"]["dag"]["tasks"]
    assert "validate-data" in root["detect-drift"]["dependentTasks"]  # the contract is checked first
    for step in ("ingest-data", "validate-data", "detect-drift"):  # a new batch; the current champion
        assert not root[step]["cachingOptions"].get("enableCache", False), step
    [condition] = [task for task in root.values() if "triggerPolicy" in task]
    assert (
        condition["triggerPolicy"]["condition"]
        == "inputs.parameter_values['pipelinechannel--detect-drift-Output'] == true"
    )
    body = spec["components"][condition["componentRef"]["name"]]["dag"]["tasks"]
    assert list(body) == ["training-pipeline"]
    nested = spec["components"][body["training-pipeline"]["componentRef"]["name"]]["dag"]["tasks"]
    assert {"gate-model", "register-model", "select-model"} <= set(nested)
    retrain_data = body["training-pipeline"]["inputs"]["parameters"]["source_uri"]["componentInputParameter"]
    assert retrain_data == "pipelinechannel--retrain_source_uri"


@pytest.mark.parametrize(
    ("parameter", "kind", "default"),
    [
        ("exclude_columns", "LIST", []),
        ("sensitive_columns", "LIST", []),
        ("validation_policy", "STRUCT", {}),
        ("cleaning_policy", "STRUCT", {}),
    ],
)
def test_column_roles_and_policies_are_parameters_of_both_pipelines_wired_to_validation_and_retraining(
    build_dir, parameter, kind, default
):
    training = _documents(build_dir / "training_pipeline.yaml")[0]
    monitoring = _documents(build_dir / "monitoring_pipeline.yaml")[0]
    for spec in (training, monitoring):
        declared = spec["root"]["inputDefinitions"]["parameters"][parameter]
        assert (declared["parameterType"], declared["defaultValue"]) == (kind, default)
        validate = spec["root"]["dag"]["tasks"]["validate-data"]["inputs"]["parameters"][parameter]
        assert validate == {"componentInputParameter": parameter}
    # The monitoring run's retraining excludes the same columns under the same policy.
    [condition] = [task for task in monitoring["root"]["dag"]["tasks"].values() if "triggerPolicy" in task]
    body = monitoring["components"][condition["componentRef"]["name"]]["dag"]["tasks"]
    retraining = body["training-pipeline"]["inputs"]["parameters"][parameter]
    assert retraining == {"componentInputParameter": f"pipelinechannel--{parameter}"}


def test_sensitive_columns_reach_every_step_that_audits_fairness(build_dir):
    training = _tasks(_documents(build_dir / "training_pipeline.yaml")[0])
    for step in ("validate-data", "train-model", "evaluate-model", "gate-model"):
        wired = training[step]["inputs"]["parameters"]["sensitive_columns"]["componentInputParameter"]
        assert wired in ("sensitive_columns", "pipelinechannel--sensitive_columns"), step
    monitoring = _tasks(_documents(build_dir / "monitoring_pipeline.yaml")[0])
    wired = monitoring["detect-drift"]["inputs"]["parameters"]["sensitive_columns"]
    assert wired == {"componentInputParameter": "sensitive_columns"}


def test_pipeline_defaults_run_on_the_sample_data(build_dir):
    spec = _documents(build_dir / "training_pipeline.yaml")[0]
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    assert parameters["source_uri"]["defaultValue"].startswith("sample://house-prices")
    assert parameters["target"]["defaultValue"] == "price"
    # Uploaded to a cluster as-is, the default must not try to start a server on the pipeline pod.
    assert parameters["deploy_target"]["defaultValue"] == "none"


# --- parameters renamed or moved into a policy (issue 17): the new ones wired, each old one kept for one release ---

SAMPLE_DEFAULT = "sample://house-prices?rows=2000&seed=7"
# Each new parameter: its type and default, and the component input it sets in each step it reaches.
NEW_PARAMETERS = {
    "training": {
        "source_uri": ("STRING", SAMPLE_DEFAULT, {"ingest-data": "source_uri"}),
        "validation_policy": ("STRUCT", {}, {"validate-data": "validation_policy"}),
        "cleaning_policy": ("STRUCT", {}, {"validate-data": "cleaning_policy", "prepare-data": "cleaning_policy"}),
        "gate_policy": ("STRUCT", {}, {"gate-model": "gate_policy"}),
        "wait_timeout_seconds": ("NUMBER_INTEGER", 600, {"deploy-model": "wait_timeout_seconds"}),
    },
    "monitoring": {
        "retrain_source_uri": ("STRING", "", {"training-pipeline": "source_uri"}),
        "validation_policy": (
            "STRUCT",
            {},
            {"validate-data": "validation_policy", "training-pipeline": "validation_policy"},
        ),
        "cleaning_policy": ("STRUCT", {}, {"validate-data": "cleaning_policy", "training-pipeline": "cleaning_policy"}),
    },
}
# Each deprecated parameter: its type, the new name its docstring points to, and the component input it still sets
# in each step that owns it.
DEPRECATED_PARAMETERS = {
    "training": {
        "data_uri": ("STRING", "`source_uri`", {"ingest-data": "data_uri"}),
        "schema_policy": ("STRUCT", "`validation_policy`", {"validate-data": "schema_policy"}),
        "column_policy": ("STRUCT", "`validation_policy['identifiers']`", {"validate-data": "column_policy"}),
        "drop_duplicates": ("BOOLEAN", "`cleaning_policy['drop_duplicates']`", {"prepare-data": "drop_duplicates"}),
        "coerce_mixed_types": (
            "BOOLEAN",
            "`cleaning_policy['coerce_mixed_types']`",
            {"validate-data": "coerce_mixed_types", "prepare-data": "coerce_mixed_types"},
        ),
        "outliers": ("STRING", "`cleaning_policy['outliers']`", {"prepare-data": "outliers"}),
        "outlier_factor": ("NUMBER_DOUBLE", "`cleaning_policy['outlier_factor']`", {"prepare-data": "outlier_factor"}),
        "thresholds": ("STRUCT", "`gate_policy['thresholds']`", {"gate-model": "thresholds"}),
        "min_improvement": ("NUMBER_DOUBLE", "`gate_policy['min_improvement']`", {"gate-model": "min_improvement"}),
        "deploy_timeout_seconds": (
            "NUMBER_INTEGER",
            "`wait_timeout_seconds`",
            {"deploy-model": "deploy_timeout_seconds"},
        ),
    },
    "monitoring": {
        "retrain_data_uri": ("STRING", "`retrain_source_uri`", {"training-pipeline": "data_uri"}),
        "schema_policy": (
            "STRUCT",
            "`validation_policy`",
            {"validate-data": "schema_policy", "training-pipeline": "schema_policy"},
        ),
        "column_policy": (
            "STRUCT",
            "`validation_policy['identifiers']`",
            {"validate-data": "column_policy", "training-pipeline": "column_policy"},
        ),
    },
}


def _pipeline_spec(build_dir: Path, pipeline: str) -> dict:
    return _documents(build_dir / f"{PIPELINES[pipeline].pipeline_func.__name__}.yaml")[0]


def _steps_and_their_dags(spec: dict) -> dict[str, tuple[dict, bool]]:
    """The pipeline's own steps by task name (the root DAG's and its dsl.If bodies', not those of a nested
    pipeline): each task and whether it sits in a dsl.If body (where the pipeline's parameters are channels)."""
    found = {name: (task, False) for name, task in spec["root"]["dag"]["tasks"].items()}
    for name, component in spec["components"].items():
        if name.startswith("comp-condition") and "dag" in component:
            found.update({task_name: (task, True) for task_name, task in component["dag"]["tasks"].items()})
    return found


def _assert_wired(spec: dict, parameter: str, reaches: dict[str, str]) -> None:
    """``parameter`` of the pipeline is what each step in ``reaches`` gets as its input of the given name."""
    steps = _steps_and_their_dags(spec)
    for step, component_input in reaches.items():
        task, in_condition = steps[step]
        source = f"pipelinechannel--{parameter}" if in_condition else parameter
        assert task["inputs"]["parameters"][component_input] == {"componentInputParameter": source}, (step, parameter)


@pytest.mark.parametrize(
    ("pipeline", "parameter"), [(pipeline, name) for pipeline, names in NEW_PARAMETERS.items() for name in names]
)
def test_the_new_parameters_are_declared_with_their_defaults_and_reach_their_steps(build_dir, pipeline, parameter):
    spec = _pipeline_spec(build_dir, pipeline)
    kind, default, reaches = NEW_PARAMETERS[pipeline][parameter]

    declared = spec["root"]["inputDefinitions"]["parameters"][parameter]
    assert (declared["parameterType"], declared["defaultValue"]) == (kind, default)
    _assert_wired(spec, parameter, reaches)


@pytest.mark.parametrize(
    ("pipeline", "parameter"),
    [(pipeline, name) for pipeline, names in DEPRECATED_PARAMETERS.items() for name in names],
)
def test_a_deprecated_parameter_still_compiles_optional_and_reaches_the_component_that_owns_it(
    build_dir, pipeline, parameter
):
    spec = _pipeline_spec(build_dir, pipeline)
    kind, replacement, reaches = DEPRECATED_PARAMETERS[pipeline][parameter]

    declared = spec["root"]["inputDefinitions"]["parameters"][parameter]
    # Optional without a default: left unset, the step's own input is unset too and the component's default holds.
    assert declared["parameterType"] == kind and declared["isOptional"] is True and "defaultValue" not in declared
    assert " ".join(declared["description"].split()).startswith(f"Deprecated: use {replacement}")
    _assert_wired(spec, parameter, reaches)
    steps = _steps_and_their_dags(spec)
    for step, component_input in reaches.items():
        component = spec["components"][steps[step][0]["componentRef"]["name"]]
        owned = component["inputDefinitions"]["parameters"][component_input]
        assert owned["isOptional"] is True and "defaultValue" not in owned, (step, component_input)


# --- the serving platform (issue 19): a parameter of every pipeline that deploys, defaulting to Seldon ---------------


@pytest.mark.parametrize("pipeline", ["training", "monitoring", "rollback"])
def test_serving_platform_is_a_parameter_of_every_pipeline_that_deploys_and_defaults_to_seldon(build_dir, pipeline):
    declared = _pipeline_spec(build_dir, pipeline)["root"]["inputDefinitions"]["parameters"]["serving_platform"]

    assert (declared["parameterType"], declared["defaultValue"]) == ("STRING", "seldon")
    assert "`kserve`" in declared["description"]


def test_serving_platform_reaches_the_deploy_step_of_training_and_of_monitorings_retraining(build_dir):
    training = _pipeline_spec(build_dir, "training")
    _assert_wired(training, "serving_platform", {"deploy-model": "serving_platform"})

    monitoring = _pipeline_spec(build_dir, "monitoring")
    _assert_wired(monitoring, "serving_platform", {"training-pipeline": "serving_platform"})
    # Inside the retraining run (the nested training pipeline), its own parameter reaches its deploy step.
    [deploy] = [
        component["dag"]["tasks"]["deploy-model"]
        for component in monitoring["components"].values()
        if "deploy-model" in component.get("dag", {}).get("tasks", {})
    ]
    assert deploy["inputs"]["parameters"]["serving_platform"] == {
        "componentInputParameter": "pipelinechannel--serving_platform"
    }


def test_the_readmes_recurring_run_command_creates_an_enabled_schedule_of_the_monitoring_pipeline(
    build_dir, tmp_path, monkeypatch
):
    """Defect D4: kfp 2.17's `recurring-run create` declares `--enabled/--disabled` without a default, so click
    resolves it to False and, without `--enabled`, the README's command created a schedule that never fires."""
    from kfp.cli import recurring_run

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text().replace("\\\n", " ")
    commands = [shlex.split(line) for line in text.splitlines() if line.startswith("kfp ") and "recurring-run" in line]
    assert commands, "README.md gives no `kfp ... recurring-run create` command"
    (tmp_path / "build").symlink_to(build_dir)  # the CLI checks that the package exists
    monkeypatch.chdir(tmp_path)
    for command in commands:
        start = command.index("recurring-run")
        assert command[start + 1] == "create", command
        options = recurring_run.create.make_context("create", command[start + 2 :]).params
        assert options["enabled"] is True, command
        declared = _documents(Path(options["pipeline_package_path"]))[0]["root"]["inputDefinitions"]["parameters"]
        assert {argument.partition("=")[0] for argument in options["args"]} <= set(declared), command


def test_register_records_the_source_ingest_actually_read(build_dir):
    spec = _pipeline_spec(build_dir, "training")
    register = spec["root"]["dag"]["tasks"]["register-model"]["inputs"]["parameters"]["source_uri"]

    # Not the pipeline parameter: with the deprecated data_uri given, only ingest knows which name was used.
    assert register == {"taskOutputParameter": {"outputParameterKey": "source_uri", "producerTask": "ingest-data"}}
    outputs = spec["components"]["comp-ingest-data"]["outputDefinitions"]["parameters"]
    assert outputs["source_uri"]["parameterType"] == "STRING"


def _compile_for_cluster(tmp_path: Path, *options: str) -> subprocess.CompletedProcess:
    # A fresh process: the image references are fixed when the components are first imported.
    return subprocess.run(
        [sys.executable, "compile.py", "--output-dir", str(tmp_path), *options],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=False,
    )


def test_cluster_compile_references_the_built_images_and_never_pulls_them(tmp_path):
    completed = _compile_for_cluster(
        tmp_path, "--image-registry", "registry.local:5000/ml", "--image-tag", "0.1.0-abc1234"
    )
    assert completed.returncode == 0, completed.stderr
    documents = _documents(tmp_path / "training_pipeline.yaml")
    spec, platform = documents[0], documents[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]

    images = {executor["container"]["image"] for executor in spec["deploymentSpec"]["executors"].values()}
    assert images == {"registry.local:5000/ml/kfp-mlops-components:0.1.0-abc1234"}
    serving = spec["root"]["inputDefinitions"]["parameters"]["serving_image"]["defaultValue"]
    assert serving == "registry.local:5000/ml/kfp-mlops-serving:0.1.0-abc1234"
    # Each registered version records the images it was made with.
    register = spec["root"]["dag"]["tasks"]["register-model"]["inputs"]["parameters"]
    assert register["components_image"]["runtimeValue"]["constant"] == next(iter(images))
    assert register["serving_image"]["componentInputParameter"] == "serving_image"
    assert set(platform) == set(spec["deploymentSpec"]["executors"])
    assert {executor["imagePullPolicy"] for executor in platform.values()} == {"IfNotPresent"}
    # The registry's S3 credentials reach exactly the steps that use the registry, and never block a pod.
    with_secret = {name for name, executor in platform.items() if "secretAsEnv" in executor}
    assert with_secret == {"exec-validate-data", "exec-gate-model", "exec-register-model", "exec-deploy-model"}
    assert all(secret["optional"] for name in with_secret for secret in platform[name]["secretAsEnv"])
    for component in (tmp_path / "components").glob("*.yaml"):
        assert "0.1.0-abc1234" in component.read_text(), component.name


def test_a_latest_image_tag_is_refused_naming_the_option(tmp_path):
    completed = _compile_for_cluster(tmp_path, "--image-tag", "latest")

    assert completed.returncode == 2
    assert "error: --image-tag latest: the image tag must not be 'latest'" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_an_output_dir_that_cannot_be_written_is_named_with_the_reason(tmp_path):
    taken = tmp_path / "build"
    taken.write_text("a file, not a directory\n")

    completed = _compile_for_cluster(taken)

    assert completed.returncode == 2
    assert f"error: --output-dir {taken}: cannot write {taken}/components (Not a directory)" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_one_pipeline_is_compiled_alone_by_its_name(tmp_path):
    completed = _compile_for_cluster(tmp_path, "--pipeline", "rollback")

    assert completed.returncode == 0, completed.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["rollback_pipeline.yaml"]


def test_a_model_name_the_registry_cannot_take_is_refused_before_compiling(tmp_path):
    completed = _compile_for_cluster(tmp_path, "--pipeline", "training", "model_name=team/houses", "seed=3")

    assert completed.returncode == 2
    assert "error: parameter model_name 'team/houses' is no registered model name: " in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not list(tmp_path.iterdir())


def test_make_run_with_a_model_name_the_registry_cannot_take_stops_before_kfp(make, tmp_path):
    # On the cluster register_model would refuse it only after training and the gate.
    completed = make(
        "run",
        "PIPELINE=training",
        f"RUN_ARGS=model_name={'h' * 300} seed=3",
        "SERVING=seldon",
        "KF_PIPELINES_ENDPOINT=http://127.0.0.1:9",
        f"STATE_DIR={tmp_path / 'state'}",
        f"BUILD_DIR={tmp_path / 'build'}",
    )

    assert completed.returncode != 0
    assert "the registry takes at most 255 bytes: use a shorter name" in completed.stderr
    assert "kfp --endpoint" not in completed.stdout


def test_make_run_with_an_unknown_pipeline_stops_before_kfp_naming_the_pipelines(make, tmp_path):
    completed = make(
        "run",
        "PIPELINE=trainng",
        "SERVING=seldon",
        "KF_PIPELINES_ENDPOINT=http://127.0.0.1:9",
        f"STATE_DIR={tmp_path / 'state'}",
        f"BUILD_DIR={tmp_path / 'build'}",
    )

    assert completed.returncode != 0
    assert f"error: --pipeline 'trainng': no such pipeline; one of {', '.join(PIPELINES)}" in completed.stderr
    assert "kfp --endpoint" not in completed.stdout  # no run was attempted, so no misleading "no KFP API there?"
