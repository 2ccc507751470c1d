"""What each serving control plane writes, read by the one rollout sequence (cluster.py) for both kinds.

A ``Platform`` answers questions about objects only: the API coordinates of the custom resource, which apps/v1
Deployments its controller renders and whether one of them runs the manifest's model container, what its status
says (fresh or left over, a definitive failure, ready) and where the model is served. Applying, waiting,
smoke-testing and rolling back are cluster.py's alone, the same code for a SeldonDeployment and an
InferenceService.

- Seldon Core 1.17.1 (``SELDON``): the operator labels each Deployment ``seldon-deployment-id=<name>`` and passes
  the graph parameters (the model's digest and version) to the model container as ``PREDICTIVE_UNIT_PARAMETERS``;
  its status has no observedGeneration, only a ``state`` (``Failed`` is definitive) and the executor's address.
- KServe v0.20.0 in Standard (raw Deployment) mode (``KSERVE``; source lines at tag v0.20.0): the controller
  renders the predictor as the Deployment ``<name>-predictor`` labelled ``serving.kserve.io/inferenceservice=<name>``
  (components/predictor.go:504-512) whose ``kserve-container`` keeps the manifest's image, args (the model's name,
  digest and version) and ``STORAGE_URI`` (the pod webhook, not the controller, rewrites it to /mnt/models:
  webhook/admission/pod/storage_initializer_injector.go:560-566). Its ``status.observedGeneration`` is the
  *Deployment's* (apis/serving/v1beta1/inference_service_status.go:455-457), never the InferenceService's, so it
  is compared with the Deployment's generation; Ready stays True while an old pod is available during a rolling
  update (the same file, PropagateRawStatus), so it never decides alone.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from urllib.parse import urlsplit

from components.deploy_model import manifests
from components.deploy_model.smoke import DeploymentError


@dataclass(frozen=True)
class Platform(ABC):
    """A control plane's objects: the custom resource (``api_version``, ``kind``, ``plural``) and
    ``workload_label``, the label its controller puts on the Deployments it renders, valued with the object's name.
    The subclasses below read their own status and containers; none of them calls the API or waits."""

    name: str  # the serving_platform parameter's value
    api_version: str
    kind: str
    plural: str
    workload_label: str
    service_port: int  # where the predictor Service (manifests.PREDICTOR_SERVICES) takes the smoke test's requests

    @property
    def group(self) -> str:
        return self.api_version.split("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.split("/")[1]

    def workloads_selector(self, manifest: dict) -> str:
        """The label selector of the apps/v1 Deployments the controller renders for ``manifest``'s object."""
        return f"{self.workload_label}={manifest['metadata']['name']}"

    @abstractmethod
    def runs_manifest_container(self, manifest: dict, container) -> bool:
        """Whether ``container`` (a Deployment's V1Container of the model container's name) is the manifest's."""

    @abstractmethod
    def status_is_current(self, manifest: dict, live: dict | None, previous: dict | None, deployments: list) -> bool:
        """Whether ``live``'s status was written for the spec just applied, not left over from ``previous``'s
        (``deployments``: the object's Deployments as listed in the same poll)."""

    @abstractmethod
    def failure(self, live: dict | None) -> str:
        """The definitive failure ``live``'s status reports ('' none); only read once the status is current."""

    @abstractmethod
    def not_ready(self, manifest: dict, live: dict | None, deployments: list) -> str:
        """Why the status does not count the rolled-out object ready yet ('' when it does, or cannot tell)."""

    @abstractmethod
    def status_summary(self, live: dict | None) -> str:
        """What the status says, briefly, for a timeout's message."""

    def default_base_url(self, manifest: dict) -> str:
        """The predictor Service as the controller names it (every name `manifests.deployment_name` accepts gives a
        valid Service name), for when the status has no address yet."""
        namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
        service = manifests.PREDICTOR_SERVICES[self.name].format(name=name)
        port = "" if self.service_port == 80 else f":{self.service_port}"
        return f"http://{service}.{namespace}.svc.cluster.local{port}"

    def base_url(self, manifest: dict, live: dict | None) -> str:
        """The in-cluster address the smoke test calls: scheme and host of the status's ``address.url`` when the
        controller wrote one, else ``default_base_url``."""
        url = urlsplit((_status(live).get("address") or {}).get("url") or "")
        if url.scheme and url.netloc:
            return f"{url.scheme}://{url.netloc}"
        return self.default_base_url(manifest)

    def predictions_path(self, manifest: dict) -> str:
        """The OIP inference path of the model the server answers to (the same for both control planes)."""
        return f"/v2/models/{manifests.served_model_name(manifest)}/infer"

    def describe(self, manifest: dict) -> str:
        """``<Kind> <namespace>/<name>``, as every message names the object."""
        return f"{self.kind} {manifest['metadata']['namespace']}/{manifest['metadata']['name']}"

    def kubectl(self, manifest: dict, verb: str, *options: str) -> str:
        """The kubectl command ``verb`` (``get``, ``describe``) for the object, in backquotes."""
        namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
        return "`" + " ".join(["kubectl", "-n", namespace, verb, self.kind.lower(), name, *options]) + "`"

    def kubectl_pods(self, manifest: dict) -> str:
        """The kubectl command listing the model's pods (they carry the Deployments' label)."""
        return f"`kubectl -n {manifest['metadata']['namespace']} get pods -l {self.workloads_selector(manifest)}`"


def _status(live: dict | None) -> dict:
    return (live or {}).get("status") or {}


def _env(container) -> dict:
    """A Deployment's container's environment, by name."""
    return {variable.name: variable.value for variable in container.env or []}


@dataclass(frozen=True)
class _SeldonDeployment(Platform):
    """Seldon Core 1.17.1's operator (serving-notes §A)."""

    failed_state: str = "Failed"

    def runs_manifest_container(self, manifest: dict, container) -> bool:
        """Same image, and the graph parameters (the model's digest and version) the operator injects as
        PREDICTIVE_UNIT_PARAMETERS."""
        if container.image != manifests.model_container(manifest)["image"]:
            return False
        try:
            injected = json.loads(_env(container).get("PREDICTIVE_UNIT_PARAMETERS") or "[]")
        except ValueError:
            return False
        (predictor,) = manifest["spec"]["predictors"]
        return _parameter_set(injected) == _parameter_set(predictor["graph"].get("parameters"))

    def status_is_current(self, manifest: dict, live: dict | None, previous: dict | None, deployments: list) -> bool:
        """The status has no observedGeneration: only a state other than the previous spec's shows the operator
        has written one for the new spec (every state of a new object is its own)."""
        return previous is None or _status(live).get("state", "") != _status(previous).get("state")

    def failure(self, live: dict | None) -> str:
        status = _status(live)
        return status.get("description", "no description") if status.get("state") == self.failed_state else ""

    def not_ready(self, manifest: dict, live: dict | None, deployments: list) -> str:
        """Never: the operator counts a Deployment ready while any replica is, so `Available` stays while the old
        pod serves; the Deployments' rollout decides."""
        return ""

    def status_summary(self, live: dict | None) -> str:
        status = _status(live)
        return f"state {status.get('state') or 'none'!r}: {status.get('description', 'no description')}"


def _parameter_set(parameters) -> set[tuple]:
    return {(p.get("name"), p.get("type"), str(p.get("value"))) for p in parameters or [] if isinstance(p, dict)}


@dataclass(frozen=True)
class _InferenceService(Platform):
    """KServe v0.20.0's InferenceService controller in Standard mode (paths at tag v0.20.0, kserve-facts §1-3)."""

    # modelStatus.transitionStatus values saying the target model cannot serve (inference_service_status.go:189-203);
    # InvalidSpec is only written for a ServingRuntime `model`, BlockedByFailedLoad for a crashing pod or copy.
    failed_transitions: tuple[str, ...] = ("BlockedByFailedLoad", "InvalidSpec")

    def runs_manifest_container(self, manifest: dict, container) -> bool:
        """Same image, args (the model's name, digest and version) and STORAGE_URI: the controller copies the
        custom container into the Deployment's pod template as written (components/predictor.go:140-146)."""
        expected = manifests.model_container(manifest)
        return (
            container.image == expected["image"]
            and list(container.args or []) == list(expected.get("args") or [])
            and _env(container).get(manifests.STORAGE_URI_ENV) == _expected_env(expected).get(manifests.STORAGE_URI_ENV)
        )

    def status_is_current(self, manifest: dict, live: dict | None, previous: dict | None, deployments: list) -> bool:
        """Every status of a new object is its own; after a replace, one the controller wrote after the Deployment
        controller observed the new pod template (``_observed_rollout``)."""
        return previous is None or self._observed_rollout(manifest, live, deployments) == ""

    def failure(self, live: dict | None) -> str:
        """A transitionStatus of failure, with its lastFailureInfo. KServe judges the newest pod (pods sorted by
        creation, newest first: inferenceservice/utils/utils.go:401-409), which is the new spec's once created."""
        model = _status(live).get("modelStatus") or {}
        if model.get("transitionStatus") not in self.failed_transitions:
            return ""
        info = model.get("lastFailureInfo") or {}
        detail = ": ".join(str(part) for part in (info.get("reason"), info.get("message")) if part)
        return model["transitionStatus"] + (f" ({detail})" if detail else "")

    def not_ready(self, manifest: dict, live: dict | None, deployments: list) -> str:
        """Ready True in a status written after the Deployment controller observed the new pod template."""
        stale = self._observed_rollout(manifest, live, deployments)
        if stale:
            return stale
        ready = _ready_condition(live)
        if ready.get("status") == "True":
            return ""
        why = ": ".join(part for part in (ready.get("reason"), ready.get("message")) if part)
        return f"Ready is {ready.get('status', 'not reported')}" + (f" ({why})" if why else "")

    def _observed_rollout(self, manifest: dict, live: dict | None, deployments: list) -> str:
        """'' when the status's observedGeneration (the predictor Deployment's status.observedGeneration, copied by
        PropagateRawStatus) reaches the generation of every Deployment running the manifest's container; else why
        not. A Deployment only runs it once the controller has rendered the new spec."""
        model = manifests.model_container(manifest)["name"]
        rendered = [
            deployment.metadata.generation or 0
            for deployment in deployments
            for container in deployment.spec.template.spec.containers
            if container.name == model and self.runs_manifest_container(manifest, container)
        ]
        if not rendered:
            return "no Deployment runs the new model container yet"
        observed = _status(live).get("observedGeneration")
        if observed is None or observed < max(rendered):
            return (
                f"its status has observed Deployment generation {observed if observed is not None else 'none'}, "
                f"not yet {max(rendered)}"
            )
        return ""

    def status_summary(self, live: dict | None) -> str:
        status, ready = _status(live), _ready_condition(live)
        transition = (status.get("modelStatus") or {}).get("transitionStatus") or "none"
        reason = f" {ready['reason']}" if ready.get("reason") else ""
        return (
            f"Ready {ready.get('status', 'none')}{reason}, transitionStatus {transition}, "
            f"observedGeneration {status.get('observedGeneration', 'none')}"
        )


def _expected_env(container: dict) -> dict:
    return {variable["name"]: variable.get("value") for variable in container.get("env") or []}


def _ready_condition(live: dict | None) -> dict:
    return next((c for c in _status(live).get("conditions") or [] if c.get("type") == "Ready"), {})


SELDON = _SeldonDeployment(
    name="seldon",
    api_version=manifests.SELDON_API_VERSION,
    kind=manifests.SELDON_KIND,
    plural="seldondeployments",
    workload_label="seldon-deployment-id",
    service_port=8000,  # the executor's REST port, in front of the model container
)
KSERVE = _InferenceService(
    name="kserve",
    api_version=manifests.KSERVE_API_VERSION,
    kind=manifests.KSERVE_KIND,
    plural="inferenceservices",
    workload_label="serving.kserve.io/inferenceservice",  # constants.InferenceServicePodLabelKey (constants.go:61)
    service_port=80,  # to the container's first port (reconcilers/service/service_reconciler.go:118-129)
)
PLATFORMS = (SELDON, KSERVE)


def for_manifest(manifest: dict) -> Platform:
    """The platform whose control plane serves ``manifest``, by its apiVersion and kind."""
    identity = (manifest.get("apiVersion"), manifest.get("kind"))
    for platform in PLATFORMS:
        if identity == (platform.api_version, platform.kind):
            return platform
    known = " or ".join(f"{p.api_version} {p.kind}" for p in PLATFORMS)
    raise DeploymentError(f"manifest apiVersion/kind {identity[0]} {identity[1]} is neither {known}")
