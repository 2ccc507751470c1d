"""The rollback pipeline as compiled for a cluster: KFP accepts it, its deploy step is the training pipeline's own
(the same component spec, image, command and arguments), fed by rollback_model, never cached; and its parameters as
run_local.py passes them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format
from kfp import compiler
from kfp.pipeline_spec import pipeline_spec_pb2

from pipelines import PIPELINES
from pipelines.rollback_pipeline import rollback_pipeline
from pipelines.training_pipeline import training_pipeline

REPO_ROOT = Path(__file__).resolve().parents[2]


def _compile(pipeline, path: Path) -> list[dict]:
    compiler.Compiler().compile(pipeline, str(path))
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict[str, list[dict]]:
    directory = tmp_path_factory.mktemp("compiled")
    return {
        "rollback": _compile(rollback_pipeline, directory / "rollback_pipeline.yaml"),
        "training": _compile(training_pipeline, directory / "training_pipeline.yaml"),
    }


def test_it_is_a_pipeline_of_the_suite():
    assert PIPELINES["rollback"] is rollback_pipeline


def test_it_parses_strictly_as_a_pipeline_spec(compiled):
    spec, *platforms = compiled["rollback"]

    parsed = json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())  # unknown fields raise

    assert parsed.pipeline_info.name == "rollback-pipeline"
    assert set(parsed.root.dag.tasks) == {"rollback-model", "deploy-model"}
    for platform in platforms:
        json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())


def test_its_deploy_step_runs_the_same_code_as_the_training_pipelines(compiled):
    rollback, training = compiled["rollback"][0], compiled["training"][0]

    # The component (inputs, outputs) and what its container runs: image, command, arguments (the code itself is
    # in the command), byte for byte.
    assert rollback["components"]["comp-deploy-model"] == training["components"]["comp-deploy-model"]
    deploy = rollback["deploymentSpec"]["executors"]["exec-deploy-model"]["container"]
    assert deploy == training["deploymentSpec"]["executors"]["exec-deploy-model"]["container"]
    assert "def deploy_model(" in "\n".join(deploy["command"])


def test_the_deploy_step_serves_what_rollback_model_verified_and_records_why(compiled):
    tasks = compiled["rollback"][0]["root"]["dag"]["tasks"]
    deploy = tasks["deploy-model"]["inputs"]

    for name, output in (("model", "model"), ("test", "smoke_rows")):
        source = deploy["artifacts"][name]["taskOutputArtifact"]
        assert source == {"outputArtifactKey": output, "producerTask": "rollback-model"}, name
    for name, output in (
        ("model_version", "model_version"),
        ("model_uri", "model_uri"),
        ("reason", "recorded_reason"),
        ("forced", "forced"),
    ):
        source = deploy["parameters"][name]["taskOutputParameter"]
        assert source == {"outputParameterKey": output, "producerTask": "rollback-model"}, name
    # The run's name gives the move's cause ("rollback") in the history; its id says which run moved it.
    assert deploy["parameters"]["pipeline_job_name"] == {"runtimeValue": {"constant": "{{$.pipeline_job_name}}"}}
    assert deploy["parameters"]["pipeline_job_id"] == {"runtimeValue": {"constant": "{{$.pipeline_job_uuid}}"}}
    for name in ("model_name", "deploy_target", "serving_platform", "tracking_uri"):
        assert deploy["parameters"][name] == {"componentInputParameter": name}
        assert tasks["rollback-model"]["inputs"]["parameters"][name] == {"componentInputParameter": name}


def test_neither_step_is_ever_cached(compiled):
    tasks = compiled["rollback"][0]["root"]["dag"]["tasks"]

    for name in ("rollback-model", "deploy-model"):
        assert not tasks[name].get("cachingOptions", {}).get("enableCache", False), name


def test_both_steps_reach_the_registry_with_its_credentials_and_use_loaded_images(compiled):
    _, platform = compiled["rollback"]
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]

    assert set(executors) == {"exec-rollback-model", "exec-deploy-model"}
    for name, executor in executors.items():
        assert executor["imagePullPolicy"] == "IfNotPresent", name
        assert {secret["secretName"] for secret in executor["secretAsEnv"]} == {"mlflow-s3-credentials"}, name


def test_it_serves_on_the_cluster_by_default_and_documents_every_parameter(compiled):
    parameters = compiled["rollback"][0]["root"]["inputDefinitions"]["parameters"]

    assert parameters["deploy_target"]["defaultValue"] == "kubernetes"  # `none` would serve nothing
    assert parameters["model_name"]["defaultValue"] == "house-prices"
    assert (parameters["to_version"]["defaultValue"], parameters["force"]["defaultValue"]) == ("", False)
    assert not [name for name, parameter in parameters.items() if not parameter.get("description")]


# --- run_local.py: the rollback's arguments -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run_local():
    # run_local.py is a script at the repository root, not part of an installed package.
    spec = importlib.util.spec_from_file_location("run_local_under_test", REPO_ROOT / "run_local.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_text_parameter_keeps_a_number_as_its_text(run_local):
    """`to_version=2` is the text "2": KFP refuses a number for a `str` parameter."""
    text = run_local.text_parameters("rollback")

    assert {"model_name", "to_version", "reason", "deploy_target"} <= text
    assert not {"force", "serving_port"} & text
    arguments = run_local.parse_arguments(
        ["to_version=2", "reason=true", 'model_name="houses"', "force=true", "serving_port=9100"], text
    )
    assert arguments == {
        "to_version": "2",
        "reason": "true",
        "model_name": "houses",  # a quoted JSON string is still its content
        "force": True,
        "serving_port": 9100,
    }
    assert run_local.text_parameters("no-such-pipeline") == set()


def test_a_whole_number_for_a_float_parameter_is_a_float(run_local):
    """`validation_fraction=0` is 0.0: KFP refuses an int for a `float` parameter."""
    floats = run_local.float_parameters("training")

    assert {"validation_fraction", "test_fraction"} <= floats
    assert not {"seed", "max_training_rows"} & floats
    arguments = run_local.parse_arguments(["validation_fraction=0", "test_fraction=0.25", "seed=7"], set(), floats)
    assert arguments == {"validation_fraction": 0.0, "test_fraction": 0.25, "seed": 7}
    assert type(arguments["validation_fraction"]) is float and type(arguments["seed"]) is int
    # Only whole numbers: a value of another kind reaches KFP, which names the parameter and the type it wants.
    assert run_local.parse_arguments(["test_fraction=true"], set(), floats) == {"test_fraction": True}


def test_history_refuses_an_argument_it_does_not_take(run_local, tmp_path):
    with pytest.raises(ValueError, match=r"unknown argument\(s\) \['to_version'\] for 'history'"):
        run_local.show_history({"model_name": "houses", "to_version": "2"}, tmp_path)
    with pytest.raises(ValueError, match="'history' needs model_name="):
        run_local.show_history({}, tmp_path)


def test_history_names_a_registry_that_does_not_answer(run_local, tmp_path, free_ports):
    # The README's command for a cluster's registry, before the port-forward runs: once 4 minutes of MLflow's
    # retries, then a raw traceback.
    [port] = free_ports(1)
    uri = f"http://127.0.0.1:{port}"

    with pytest.raises(ValueError, match=rf"cannot read the promotion history of 'houses' from the registry at {uri}"):
        run_local.show_history({"model_name": "houses", "tracking_uri": uri}, tmp_path)
