"""rollback_model called as the pipeline calls it (``python_func``), with local artifacts (the `artifact` fixture)
and a real local registry: its outputs are what deploy_model takes."""

from __future__ import annotations

import pytest
from kfp import dsl

import model_bundle
from components._common import history, registry
from components._common.datasets import read_dataset
from components.deploy_model.smoke import DeploymentError
from components.register_model.logic import register
from components.rollback_model.component import rollback_model
from components.rollback_model.logic import RollbackError

NAME = "houses"


@pytest.fixture
def two_champions(mlflow_state, regression_bundle):
    bundle, _ = regression_bundle
    client = registry.connect("")
    for _ in range(2):
        version = register("", NAME, bundle.directory, {"r2": 0.5}, True, "approved").version
        history.move_alias(client, NAME, registry.CHAMPION, version, cause="training", moved_by="test")
    return bundle


def outputs(artifact) -> dict:
    return {"model": artifact(dsl.Model, "model"), "smoke_rows": artifact(dsl.Dataset, "smoke_rows")}


def test_stages_the_previous_champion_for_the_deploy_step(two_champions, artifact, capsys):
    staged = outputs(artifact)

    version, uri, reason, forced = rollback_model.python_func(
        model_name=NAME, deploy_target="local", reason="v2 errs", **staged
    )

    assert (version, reason, forced) == ("1", "v2 errs", False)
    assert uri == registry.connect("").get_model_version(NAME, "1").source
    # What deploy_model reads: the model directory, and the smoke rows by the model's feature names.
    bundle = model_bundle.load(staged["model"].path, expected_sha256=two_champions.card.sha256)
    assert not read_dataset(staged["smoke_rows"].path)[bundle.feature_names].empty
    assert staged["model"].metadata == {"model_name": NAME, "model_version": "1", "sha256": bundle.card.sha256}
    assert staged["smoke_rows"].metadata["rows"] == 1
    assert f"rolling {NAME} back from v2 to v1 ({uri}); reason: v2 errs" in capsys.readouterr().out


def test_a_refusal_fails_the_step_naming_it(two_champions, artifact):
    with pytest.raises(RollbackError, match=f"{NAME} v2 is already the champion"):
        rollback_model.python_func(model_name=NAME, deploy_target="local", to_version="2", **outputs(artifact))


def test_the_serving_platform_reaches_the_step(artifact):
    with pytest.raises(DeploymentError, match=r"parameter serving_platform must be one of .*, got 'knative'"):
        rollback_model.python_func(
            model_name=NAME, deploy_target="kubernetes", serving_platform="knative", **outputs(artifact)
        )
