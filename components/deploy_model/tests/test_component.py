"""deploy_model as a pipeline step: one decision in logic.deploy, the component only passes its parameters (and maps
the deprecated deploy_timeout_seconds); the promotion history it outputs for every target."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import yaml

from components._common import registry
from components.deploy_model import cluster
from components.deploy_model.component import deploy_model
from components.deploy_model.logic import deploy
from components.deploy_model.manifests import build_inference_service, build_seldon_deployment
from components.register_model.logic import register

URI = "s3://models/houses/7/artifacts/model"


@pytest.mark.parametrize(
    ("platform", "builder"), [("seldon", build_seldon_deployment), ("kserve", build_inference_service)]
)
def test_target_none_renders_exactly_the_platforms_resource_and_deploys_nothing(
    regression_bundle, tmp_path, monkeypatch, platform, builder
):
    bundle, _ = regression_bundle
    monkeypatch.setattr(cluster, "load_api", lambda: pytest.fail("target none reached the cluster"))
    rendered = tmp_path / "manifest.yaml"
    arguments = (bundle.directory, tmp_path / "absent.parquet", "houses", "3", URI, "kfp-mlops-serving:test", rendered)

    # No test rows are read and no registry is asked: the manifest is all target none produces.
    endpoint = deploy(*arguments, **({} if platform == "seldon" else {"serving_platform": platform}))

    assert endpoint == ""
    assert yaml.safe_load(rendered.read_text()) == builder(
        "houses", "3", URI, bundle.card.sha256, "models", image="kfp-mlops-serving:test"
    )


def component_arguments(bundle, tmp_path, **overrides) -> dict:
    return {
        "model": SimpleNamespace(path=str(bundle.directory)),
        "test": SimpleNamespace(path=str(tmp_path / "test.parquet")),
        "model_name": "houses",
        "model_version": "3",
        "model_uri": URI,
        "serving_image": "kfp-mlops-serving:test",
        "manifest": SimpleNamespace(path=str(tmp_path / "manifest.yaml")),
        "history": SimpleNamespace(path=str(tmp_path / "history.md")),
        **overrides,
    }


def test_the_component_passes_every_parameter_to_the_step(regression_bundle, tmp_path, monkeypatch):
    from components.deploy_model import logic

    calls = []
    monkeypatch.setattr(logic, "deploy", lambda *args, **kwargs: calls.append((args, kwargs)) or "http://served")

    (endpoint,) = deploy_model.python_func(
        **component_arguments(
            regression_bundle[0],
            tmp_path,
            deploy_target="local",
            serving_platform="kserve",
            wait_timeout_seconds=42,
            pipeline_job_id="8d2e",
            pipeline_job_name="rollback-pipeline-2026-11-30-16-40-01",
            reason="v3 times out",
            forced=True,
        )
    )

    assert endpoint == "http://served"
    [(args, kwargs)] = calls
    assert args == (
        str(regression_bundle[0].directory),
        str(tmp_path / "test.parquet"),
        "houses",
        "3",
        URI,
        "kfp-mlops-serving:test",
        str(tmp_path / "manifest.yaml"),
    )
    assert kwargs == {
        "deploy_target": "local",
        "serving_platform": "kserve",
        "namespace": "models",
        "tracking_uri": "",
        "serving_port": 9000,
        "metrics_port": 6000,
        "wait_timeout_seconds": 42,
        "pipeline_job_id": "8d2e",
        "pipeline_job_name": "rollback-pipeline-2026-11-30-16-40-01",
        "reason": "v3 times out",
        "forced": True,
        "history_path": str(tmp_path / "history.md"),
    }


def test_deploy_timeout_seconds_still_sets_the_wait_with_a_deprecation_message(
    regression_bundle, tmp_path, monkeypatch, capsys
):
    from components.deploy_model import logic

    calls = []
    monkeypatch.setattr(logic, "deploy", lambda *args, **kwargs: calls.append(kwargs) or "")

    deploy_model.python_func(**component_arguments(regression_bundle[0], tmp_path, deploy_timeout_seconds=42))

    assert calls[0]["wait_timeout_seconds"] == 42
    assert (
        "DEPRECATED: parameter deploy_timeout_seconds will be removed in the next release; use wait_timeout_seconds "
        "instead" in capsys.readouterr().err
    )


def test_the_component_deploys_to_seldon_by_default(regression_bundle, tmp_path, monkeypatch):
    from components.deploy_model import logic

    calls = []
    monkeypatch.setattr(logic, "deploy", lambda *args, **kwargs: calls.append(kwargs) or "")

    deploy_model.python_func(**component_arguments(regression_bundle[0], tmp_path))

    assert calls[0]["serving_platform"] == "seldon"


def test_target_none_outputs_a_note_and_creates_no_registry_when_there_is_none(
    regression_bundle, tmp_path, monkeypatch
):
    monkeypatch.setenv(registry.STATE_DIR_ENV, str(tmp_path / "state"))

    deploy_model.python_func(**component_arguments(regression_bundle[0], tmp_path))

    assert (tmp_path / "history.md").read_text() == (
        "# Promotion history of `houses`\n\nNothing recorded: the registry at "
        f"{registry.local_tracking_uri(tmp_path / 'state')} has no model 'houses': no local registry exists yet.\n"
    )
    assert not (tmp_path / "state").exists()


def test_target_none_outputs_the_models_history(mlflow_state, regression_bundle, tmp_path):
    bundle, _ = regression_bundle
    register("", "houses", bundle.directory, {"r2": 0.9}, True, "approved", pipeline_job_id="run-1")

    deploy_model.python_func(**component_arguments(bundle, tmp_path))

    report = (tmp_path / "history.md").read_text()
    assert (
        f"| challenger | (none) -> 1 | {bundle.card.sha256[:12]} | registration | register_model (KFP run run-1) |"
        in (report)
    )
    assert registry.version_by_alias(registry.connect(""), "houses", registry.CHAMPION) is None
