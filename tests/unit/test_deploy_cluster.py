"""The kubernetes deploy target against a recording fake of the Kubernetes CustomObjectsApi.

Status objects are shaped as the Seldon Core 1.17 operator writes them (state Creating / Available / Failed,
description, address, deploymentStatus), so each path asserts the exact API calls made, and that the
registry's champion alias moves only after a deployment that is Available and answers correctly.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from kubernetes.client.exceptions import ApiException

from components._common import registry
from components.deploy_model import cluster, logic
from components.deploy_model.logic import DeploymentError, build_seldon_deployment, deploy_kubernetes
from components.register_model.logic import register

NAMESPACE, NAME = "models", "houses"
URL = "http://houses-default.models.svc.cluster.local:8000/api/v1.0/predictions"
SHA = "ab" * 32
ROWS = pd.DataFrame({"size_sqm": [80.0]})


def status(state: str, description: str = "") -> dict:
    """A SeldonDeployment status as the operator records it."""
    recorded = {"state": state, "replicas": 1}
    if description:
        recorded["description"] = description
    if state == "Available":
        recorded["address"] = {"url": URL}
        recorded["deploymentStatus"] = {"houses-default-0-model": {"availableReplicas": 1, "replicas": 1}}
    return recorded


CREATING = status("Creating")
AVAILABLE = status("Available")
FAILED = status("Failed", "Cannot find field: imagePullPolicy")


class FakeApi:
    """Records every call; ``get`` answers from a scripted list of objects (None = 404)."""

    def __init__(self, live: dict | None, statuses: list[dict]):
        self.live = copy.deepcopy(live)
        self.statuses = list(statuses)
        self.calls: list[tuple] = []

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        self.calls.append(("get", namespace, name))
        if self.live is None:
            raise ApiException(status=404, reason="Not Found")
        if self.statuses and self.live.get("status") is not None:
            self.live["status"] = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return copy.deepcopy(self.live)

    def create_namespaced_custom_object(self, group, version, namespace, plural, body):
        assert (group, version, plural) == ("machinelearning.seldon.io", "v1", "seldondeployments")
        self.calls.append(("create", namespace, body["metadata"]["name"], copy.deepcopy(body)))
        self.live = {**copy.deepcopy(body), "metadata": {**body["metadata"], "resourceVersion": "100"}, "status": {}}

    def replace_namespaced_custom_object(self, group, version, namespace, plural, name, body):
        self.calls.append(("replace", namespace, name, copy.deepcopy(body)))
        assert body["metadata"]["resourceVersion"] == self.live["metadata"]["resourceVersion"]
        version_number = str(int(self.live["metadata"]["resourceVersion"]) + 1)
        self.live = {
            **copy.deepcopy(body),
            "metadata": {**body["metadata"], "resourceVersion": version_number},
            "status": self.live.get("status") or {},
        }

    def delete_namespaced_custom_object(self, group, version, namespace, plural, name):
        self.calls.append(("delete", namespace, name))
        self.live = None

    def verbs(self) -> list[str]:
        return [call[0] for call in self.calls]


class Clock:
    """A fake monotonic clock that the fake sleep advances."""

    def __init__(self):
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def manifest(version: str = "2") -> dict:
    return build_seldon_deployment(NAME, version, f"s3://mlpipeline/mlflow/{version}/model", SHA, NAMESPACE)


def live_object(version: str = "1") -> dict:
    existing = manifest(version)
    existing["metadata"]["resourceVersion"] = "41"
    existing["status"] = AVAILABLE
    return existing


def roll_out(api, smoke=lambda url: None, timeout=60.0):
    clock = Clock()
    return cluster.roll_out(api, manifest(), smoke, timeout=timeout, poll_seconds=5.0, clock=clock, sleep=clock.sleep)


def test_a_new_deployment_is_created_waited_for_and_smoke_tested():
    api = FakeApi(None, [CREATING, CREATING, AVAILABLE])
    smoked = []

    rollout = roll_out(api, smoke=smoked.append)

    assert rollout == cluster.Rollout(predictions_url=URL, replaced_existing=False)
    assert api.verbs() == ["get", "create", "get", "get", "get"]
    assert api.calls[1][3] == manifest()
    assert smoked == [URL]


def test_an_existing_deployment_is_replaced_with_its_resource_version():
    api = FakeApi(live_object("1"), [AVAILABLE])

    rollout = roll_out(api)

    assert rollout.replaced_existing
    assert api.verbs() == ["get", "replace", "get"]
    sent = api.calls[1][3]
    assert sent["metadata"]["resourceVersion"] == "41"
    assert sent["spec"] == manifest()["spec"]
    assert sent["metadata"]["annotations"]["kfp-mlops/model-version"] == "2"


def test_unready_then_ready_waits_with_the_poll_interval():
    api = FakeApi(None, [CREATING, CREATING, CREATING, AVAILABLE])
    clock = Clock()

    cluster.roll_out(api, manifest(), lambda url: None, timeout=60.0, poll_seconds=5.0, clock=clock, sleep=clock.sleep)

    assert clock.slept == [5.0, 5.0, 5.0]


def test_never_available_times_out_and_deletes_the_new_deployment():
    api = FakeApi(None, [CREATING])

    with pytest.raises(
        cluster.ClusterDeploymentError, match=r"not Available before the timeout \(state 'Creating'"
    ) as error:
        roll_out(api, timeout=20.0)

    assert "deleted the new SeldonDeployment models/houses" in str(error.value)
    assert api.verbs()[-1] == "delete"
    assert api.live is None


def test_a_failed_deployment_restores_the_previous_spec():
    api = FakeApi(live_object("1"), [FAILED])

    with pytest.raises(cluster.ClusterDeploymentError, match="failed: Cannot find field: imagePullPolicy") as error:
        roll_out(api)

    assert "restored the previous spec" in str(error.value)
    assert api.verbs() == ["get", "replace", "get", "get", "replace"]
    restored = api.calls[-1][3]
    assert restored["spec"] == live_object("1")["spec"]
    assert restored["metadata"]["annotations"]["kfp-mlops/model-version"] == "1"
    assert restored["metadata"]["resourceVersion"] == "42"  # the live object's, as a replace requires


def test_a_smoke_test_failing_until_the_deadline_rolls_back():
    api = FakeApi(live_object("1"), [AVAILABLE])

    def smoke(url):
        raise DeploymentError("smoke test: served predictions [1.0] differ from the model's [2.0]")

    with pytest.raises(cluster.ClusterDeploymentError, match=r"smoke test of .* still failing after 20 s") as error:
        roll_out(api, smoke=smoke, timeout=20.0)

    assert "restored the previous spec" in str(error.value)
    assert api.calls[-1][0] == "replace"
    assert api.calls[-1][3]["spec"] == live_object("1")["spec"]


def test_a_smoke_test_passes_once_the_new_pods_answer():
    """Right after a replace, the previous pods may still answer: the smoke test is retried until the deadline."""
    api = FakeApi(live_object("1"), [AVAILABLE])
    answers = iter([DeploymentError("old model answered"), DeploymentError("old model answered"), None])

    def smoke(url):
        outcome = next(answers)
        if outcome is not None:
            raise outcome

    assert roll_out(api, smoke=smoke).predictions_url == URL
    assert "delete" not in api.verbs() and api.verbs().count("replace") == 1


def test_other_api_errors_are_not_taken_for_absence():
    class Forbidden(FakeApi):
        def get_namespaced_custom_object(self, *args):
            raise ApiException(status=403, reason="Forbidden")

    with pytest.raises(ApiException):
        roll_out(Forbidden(None, []))


# --- the whole target: registry alias -------------------------------------------------------------------------


@pytest.fixture
def registered(mlflow_state, regression_bundle):
    """Version 1 champion, version 2 registered: what the deploy step finds."""
    bundle, _ = regression_bundle
    register("", NAME, bundle.directory, {"r2": 0.9}, True, "approved", pipeline_job_id="run-1")
    register("", NAME, bundle.directory, {"r2": 0.91}, True, "approved", pipeline_job_id="run-2")
    client = registry.connect("")
    client.set_registered_model_alias(NAME, registry.CHAMPION, "1")
    return client


def _deploy(monkeypatch, api, smoke_answer):
    """deploy_kubernetes with the in-cluster HTTP smoke test replaced by ``smoke_answer(url)``."""
    monkeypatch.setattr(logic, "smoke_test", lambda url, rows, expected: smoke_answer(url))
    return deploy_kubernetes(manifest("2"), ROWS, np.array([1.0]), "", timeout=0.0, api=api)


def test_success_moves_champion_and_records_where_it_is_served(registered, monkeypatch):
    endpoint = _deploy(monkeypatch, FakeApi(live_object("1"), [AVAILABLE]), lambda url: None)

    assert endpoint == URL
    assert str(registered.get_model_version_by_alias(NAME, registry.CHAMPION).version) == "2"
    tags = registered.get_model_version(NAME, "2").tags
    assert (tags["deployment.target"], tags["deployment.namespace"], tags["deployment.name"]) == (
        "kubernetes",
        NAMESPACE,
        NAME,
    )
    assert tags["deployment.endpoint"] == URL


@pytest.mark.parametrize(
    ("statuses", "smoke_error"),
    [([FAILED], None), ([CREATING], None), ([AVAILABLE], DeploymentError("wrong answer"))],
    ids=["failed", "timeout", "smoke-test"],
)
def test_every_failure_leaves_champion_where_it_was(registered, monkeypatch, statuses, smoke_error):
    def smoke(url):
        if smoke_error is not None:
            raise smoke_error

    with pytest.raises(DeploymentError, match="deploying houses v2 to Kubernetes failed"):
        _deploy(monkeypatch, FakeApi(live_object("1"), statuses), smoke)

    assert str(registered.get_model_version_by_alias(NAME, registry.CHAMPION).version) == "1"
    assert "deployment.target" not in registered.get_model_version(NAME, "2").tags
