"""`make rehearse` as tests: the whole cluster path with the real images, one rehearsal for the module.

The images are the ones `make images` tagged (conftest.py). Skipped with the reason where no Docker daemon runs or
the images are not built; in CI (CI set) such a skip fails the run (tests/fixtures.py).
"""

from __future__ import annotations

import pytest

from cluster.rehearsal import rehearse as rehearsal
from cluster.rehearsal.common import rehearsal_containers
from components.deploy_model.manifests import STORAGE_URI_ENV, model_container, served_model_name
from tests.pipelines.test_compile import TRAINING_STEPS

pytestmark = pytest.mark.container


@pytest.fixture(scope="module")
def rehearsed(images, docker, tmp_path_factory):
    from kfp.local import config
    from kfp.local.orchestrator import task_spec_utils

    # The rehearsal sets kfp.local up for the whole process (local.init with its DockerRunner) and patches its loop
    # builder (run_local.kfp_local_fixes): both are put back once the module is done.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config.LocalExecutionConfig, "instance", config.LocalExecutionConfig.instance)
        loop_builder = "create_parameter_loop_iteration_task_spec"
        patch.setattr(task_spec_utils, loop_builder, getattr(task_spec_utils, loop_builder))
        yield docker, rehearsal.rehearse(images.tag, images.registry, work_dir=tmp_path_factory.mktemp("rehearsal"))


def test_every_stage_runs_and_reports_what_it_proved(rehearsed):
    _, result = rehearsed
    assert [stage.name for stage in result.stages] == [
        "object store",
        "MLflow server",
        "training pipeline",
        "SeldonDeployment",
        "storage initializer",
        "model server",
        "KServe predictor",
        "tampered model",
        "clean-up",
    ]
    assert all(stage.proved for stage in result.stages)


def test_each_step_ran_in_its_container_and_its_resources_were_measured(rehearsed):
    _, result = rehearsed
    assert set(result.step_usage) == TRAINING_STEPS
    for step, usage in result.step_usage.items():
        assert usage.peak_rss_mb > 20 and usage.cpu_seconds > 0, step


def test_registry_steps_got_the_s3_secret_and_wrote_the_model_to_s3(rehearsed):
    _, result = rehearsed
    assert set(result.facts["secrets"]) == {
        "exec-validate-data",
        "exec-gate-model",
        "exec-register-model",
        "exec-deploy-model",
    }
    assert result.facts["model_uri"].startswith("s3://mlpipeline/mlflow/")


def test_the_served_container_answers_what_the_model_file_predicts(rehearsed):
    _, result = rehearsed
    serving = result.facts["serving"]
    # prove_serving passed: the deploy step's smoke test found this digest and model.joblib's own predictions.
    assert serving["rows"] == 5 and serving["requests_counted"] >= 1
    assert result.facts["model_uri"].endswith("/artifacts/model")


def test_the_kserve_predictor_answers_what_the_model_file_predicts(rehearsed):
    _, result = rehearsed
    inference_service = result.facts["inference_service"]
    served, seldon_served = result.facts["kserve"], result.facts["serving"]
    container = model_container(inference_service)
    # The deploy step's InferenceService for the version the SeldonDeployment serves: the same URI and image.
    env = {variable["name"]: variable["value"] for variable in container["env"]}
    assert (env[STORAGE_URI_ENV], container["image"]) == (result.facts["model_uri"], result.facts["serving_image"])
    # prove_serving passed: the smoke test found the digest and these predictions of model.joblib in the answers.
    assert served["model_name"] == served_model_name(inference_service)
    assert served["rows"] == 5 and served["requests_counted"] >= 1
    assert (served["sha256"], served["predictions"]) == (seldon_served["sha256"], seldon_served["predictions"])
    (stage,) = [stage for stage in result.stages if stage.name == "KServe predictor"]
    assert f"STORAGE_URI=/mnt/models, --model_name={served['model_name']} " in stage.proved


def test_nothing_is_left_running(rehearsed):
    client, _ = rehearsed
    assert rehearsal_containers(client) == []


def test_summary_prints_every_stage_and_step(rehearsed):
    _, result = rehearsed
    lines: list[str] = []
    rehearsal.print_summary(result, lines.append)
    text = "\n".join(lines)
    assert all(stage.name in text for stage in result.stages)
    assert all(step in text for step in TRAINING_STEPS)
