"""A recording fake of the Kubernetes API for cluster.roll_out, shared by the SeldonDeployment tests
(test_cluster.py) and the InferenceService tests (test_cluster_kserve.py): one fake, as there is one sequence.

It stands in for the API server only: custom objects of one resource (``resource``: group, version, plural, which
each test module writes down from its controller's CRD), with the status a test scripts poll by poll, and the apps/v1
Deployments a test scripts. Create and replace answer the object as written, with the resourceVersion and
metadata.generation the API server gives it (generation 1 on create, +1 when a replace changes the spec), as the
real client returns it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from components.deploy_model import smoke

# The model both test modules deploy, and where: also the OIP model name the real server answers to.
NAMESPACE, NAME = "models", "houses"


class FakeApi:
    """Records every call: ``calls`` as (verb, namespace, name[, body]) and ``resources`` as the (group, version,
    plural) of every custom-object call; a call naming another resource than ``resource`` gets 404 Not Found, as
    the API server answers for a resource it does not serve. ``get`` answers the live object with the next
    scripted status; ``list`` answers the next scripted Deployments. The last entry of a script repeats; an
    exception in it is raised instead. ``conflicts`` makes that many replaces fail with 409; ``refuse`` maps a
    verb to the ApiException it raises from then on."""

    resource: tuple[str, str, str]  # set by each test module's subclass

    def __init__(self, live: dict | None, statuses: list, deployments: list | None = None, conflicts: int = 0):
        self.live = copy.deepcopy(live)
        self.statuses = list(statuses)
        self.deployments = list(deployments or [[]])
        self.conflicts = conflicts
        self.refuse: dict[str, Exception] = {}
        self.calls: list[tuple] = []
        self.resources: list[tuple[str, str, str]] = []

    @staticmethod
    def _next(script: list):
        entry = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(entry, Exception):
            raise entry
        return entry

    def _refused(self, verb: str) -> None:
        if verb in self.refuse:
            raise self.refuse[verb]

    def _served(self, group: str, version: str, plural: str) -> None:
        self.resources.append((group, version, plural))
        if (group, version, plural) != self.resource:
            raise ApiException(status=404, reason="Not Found")

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        self.calls.append(("get", namespace, name))
        self._served(group, version, plural)
        self._refused("get")
        if self.live is None:
            raise ApiException(status=404, reason="Not Found")
        if self.statuses:
            self.live["status"] = self._next(self.statuses)
        return copy.deepcopy(self.live)

    def create_namespaced_custom_object(self, group, version, namespace, plural, body):
        self.calls.append(("create", namespace, body["metadata"]["name"], copy.deepcopy(body)))
        self._served(group, version, plural)
        self._refused("create")
        metadata = {**copy.deepcopy(body["metadata"]), "resourceVersion": "100", "generation": 1}
        self.live = {**copy.deepcopy(body), "metadata": metadata, "status": {}}
        return {key: value for key, value in copy.deepcopy(self.live).items() if key != "status"}

    def replace_namespaced_custom_object(self, group, version, namespace, plural, name, body):
        self.calls.append(("replace", namespace, name, copy.deepcopy(body)))
        self._served(group, version, plural)
        self._refused("replace")
        if self.conflicts:
            self.conflicts -= 1
            # The controller wrote the status meanwhile: the resourceVersion the body carries is out of date.
            self.live["metadata"]["resourceVersion"] = str(int(self.live["metadata"]["resourceVersion"]) + 1)
            raise ApiException(status=409, reason="Conflict")
        assert body["metadata"]["resourceVersion"] == self.live["metadata"]["resourceVersion"]
        generation = self.live["metadata"].get("generation", 1) + (body["spec"] != self.live["spec"])
        metadata = {
            **copy.deepcopy(body["metadata"]),
            "resourceVersion": str(int(self.live["metadata"]["resourceVersion"]) + 1),
            "generation": generation,
        }
        # A replace through the main resource leaves the status alone (the status subresource owns it).
        self.live = {**copy.deepcopy(body), "metadata": metadata, "status": self.live.get("status") or {}}
        return copy.deepcopy(self.live)

    def delete_namespaced_custom_object(self, group, version, namespace, plural, name):
        self.calls.append(("delete", namespace, name))
        self._served(group, version, plural)
        self._refused("delete")
        self.live = None

    def list_namespaced_deployment(self, namespace, label_selector=None):
        self.calls.append(("list", namespace, label_selector))
        return k8s.V1DeploymentList(items=self._next(self.deployments))

    def verbs(self) -> list[str]:
        return [call[0] for call in self.calls]


def deployment(
    name: str,
    labels: dict[str, str],
    containers: list[k8s.V1Container],
    generation: int,
    observed: int | None,
    replicas: int,
    updated: int,
    available: int,
) -> k8s.V1Deployment:
    """An apps/v1 Deployment as the Deployment controller reports it (the fields `kubectl rollout status` reads)."""
    return k8s.V1Deployment(
        metadata=k8s.V1ObjectMeta(name=name, generation=generation, labels=labels),
        spec=k8s.V1DeploymentSpec(
            replicas=1,
            selector=k8s.V1LabelSelector(match_labels=labels),
            template=k8s.V1PodTemplateSpec(spec=k8s.V1PodSpec(containers=containers)),
        ),
        status=k8s.V1DeploymentStatus(
            observed_generation=generation if observed is None else observed,
            replicas=replicas,
            updated_replicas=updated,
            available_replicas=available,
            ready_replicas=available,
        ),
    )


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


def recording(answers: list | None = None) -> tuple[list, Callable[[str], None]]:
    """A smoke test recording its base URLs; raises the scripted answers that are exceptions."""
    called: list[str] = []
    answers = list(answers or [])

    def smoke_test(base_url: str) -> None:
        called.append(base_url)
        if answers:
            outcome = answers.pop(0)
            if outcome is not None:
                raise outcome

    return called, smoke_test


def real_smoke(bundle, rows, sha256: str | None = None) -> Callable[[str], None]:
    """The deploy step's smoke test of ``bundle`` (expecting digest ``sha256``, by default the bundle's own)."""
    return lambda base_url: smoke.smoke_test(base_url, NAME, rows, bundle.predict(rows), sha256 or bundle.card.sha256)
