"""Deploying a SeldonDeployment through the Kubernetes API: create or replace, follow the rollout, smoke-test,
roll back.

The API object, the clock and the smoke test are passed in, so the whole sequence is unit-tested against a
recording fake (components/deploy_model/tests/test_cluster.py) with the objects the Seldon Core 1.17.1 operator and the
Deployment controller write.

Why the rollout, not the SeldonDeployment's status, decides: the status has no observedGeneration, so right after
a replace it still says `Available` for the previous spec, and Seldon keeps saying so while the old pod serves (it
counts a Deployment ready while any replica is). The operator renders each predictor into Deployments labelled
`seldon-deployment-id=<name>`; the wait requires every one of them to carry the new model container (image and
graph parameters, which include the model's digest) and to have finished rolling it out, as `kubectl rollout
status` judges it. The smoke test then checks the digest the served model reports, so an old pod can never pass
for a new version. (About 330 lines: one sequence, apply, wait, smoke test, roll back, whose every step ends in
the same rollback on failure, so it is kept in one module.)
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from components.deploy_model import manifests

GROUP = "machinelearning.seldon.io"
VERSION = "v1"
PLURAL = "seldondeployments"
FAILED = "Failed"
SELDON_ID_LABEL = "seldon-deployment-id"
EXECUTOR_HTTP_PORT = 8000
CONFLICT_ATTEMPTS = 5  # a replace racing the operator's status writes gets 409 Conflict; re-read and retry


class ClusterDeploymentError(RuntimeError):
    """The SeldonDeployment could not be applied, did not roll out or failed its smoke test (then rolled back)."""


@dataclass(frozen=True)
class Rollout:
    """What happened: where the model is served in the cluster and whether the deployment existed before."""

    base_url: str
    predictions_url: str
    replaced_existing: bool


class KubernetesApi:
    """The two Kubernetes API groups the deploy step uses, as one object (the shape the tests fake)."""

    def __init__(self, custom_objects, apps):
        self.custom_objects, self.apps = custom_objects, apps

    def get_namespaced_custom_object(self, *args, **kwargs):
        return self.custom_objects.get_namespaced_custom_object(*args, **kwargs)

    def create_namespaced_custom_object(self, *args, **kwargs):
        return self.custom_objects.create_namespaced_custom_object(*args, **kwargs)

    def replace_namespaced_custom_object(self, *args, **kwargs):
        return self.custom_objects.replace_namespaced_custom_object(*args, **kwargs)

    def delete_namespaced_custom_object(self, *args, **kwargs):
        return self.custom_objects.delete_namespaced_custom_object(*args, **kwargs)

    def list_namespaced_deployment(self, *args, **kwargs):
        return self.apps.list_namespaced_deployment(*args, **kwargs)


def load_api() -> KubernetesApi:
    """The API from the pod's service account (in a pipeline step) or the local kubeconfig."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return KubernetesApi(client.CustomObjectsApi(), client.AppsV1Api())


def default_base_url(manifest: dict) -> str:
    """The predictor Service (Seldon's executor) as Seldon names it: `<name>-<predictor>`, which is a valid
    Service name for every name `manifests.deployment_name` accepts."""
    namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    predictor = manifest["spec"]["predictors"][0]["name"]
    return f"http://{name}-{predictor}.{namespace}.svc.cluster.local:{EXECUTOR_HTTP_PORT}"


def base_url(manifest: dict, live: dict | None) -> str:
    """The executor's address: the operator's `status.address.url` (scheme and host of it) when it wrote one."""
    address = ((live or {}).get("status") or {}).get("address") or {}
    url = urlsplit(address.get("url") or "")
    if url.scheme and url.netloc:
        return f"{url.scheme}://{url.netloc}"
    return default_base_url(manifest)


def predictions_path(manifest: dict) -> str:
    """The OIP inference path for the graph's model, through the executor."""
    return f"/v2/models/{manifest['spec']['predictors'][0]['graph']['name']}/infer"


def roll_out(
    api,
    manifest: dict,
    smoke_test: Callable[[str], None],
    timeout: float = 600.0,
    poll_seconds: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Rollout:
    """Applies ``manifest``, waits for its rollout, then ``smoke_test(base_url)`` until it passes.

    The live object is replaced, not merge-patched, so its spec is exactly the rendered manifest. Until the
    deadline, a failing smoke test is retried (the executor may need a moment after the pods are ready). Any
    failure after the write, including an API error while waiting, puts the previous spec back (or deletes the
    new object) and raises ClusterDeploymentError saying why, and how the rollback went.
    """
    from kubernetes.client.exceptions import ApiException

    namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    try:
        previous = _apply(api, manifest)
    except ApiException as error:  # refused (webhook, RBAC, conflicts to the last attempt): nothing changed
        raise ClusterDeploymentError(
            f"writing SeldonDeployment {namespace}/{name} was refused, nothing was changed: {_api_error(error)}"
        ) from error
    except Exception as error:  # no answer: whether the write landed is unknown
        raise ClusterDeploymentError(
            f"writing SeldonDeployment {namespace}/{name} failed ({_describe(error, 'writing')}); it may or may not "
            f"have been applied: check `kubectl -n {namespace} get seldondeployment {name}`"
        ) from error

    deadline = clock() + timeout
    try:
        live = _wait_rolled_out(api, manifest, previous, deadline, poll_seconds, clock, sleep)
        url = base_url(manifest, live)
        while True:
            try:
                smoke_test(url)
                break
            except RuntimeError as error:  # the smoke test's DeploymentError: wrong, old or no answer yet
                if clock() >= deadline:
                    raise ClusterDeploymentError(
                        f"smoke test of {url} still failing after {timeout:.0f} s: {error}"
                    ) from error
                sleep(poll_seconds)
    except Exception as error:  # whatever stopped the wait, the new spec must not stay live
        reason = str(error) if isinstance(error, ClusterDeploymentError) else _describe(error, "waiting")
        raise ClusterDeploymentError(f"{reason}; {_roll_back(api, namespace, name, previous)}") from error
    return Rollout(url, url + predictions_path(manifest), replaced_existing=previous is not None)


def _apply(api, manifest: dict) -> dict | None:
    """Creates or replaces the object; returns what it replaced (None: it did not exist). A 409 Conflict (the
    operator wrote the status in between, or someone created it first) is retried from a fresh GET."""
    from kubernetes.client.exceptions import ApiException

    namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    attempts = 0
    while True:
        live = _get(api, namespace, name)
        try:
            if live is None:
                api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest)
            else:
                body = _replacing(manifest, live)
                api.replace_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, body)
            return live
        except ApiException as error:
            attempts += 1
            if error.status != 409 or attempts >= CONFLICT_ATTEMPTS:
                raise


def _get(api, namespace: str, name: str) -> dict | None:
    from kubernetes.client.exceptions import ApiException

    try:
        return api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def _replacing(manifest: dict, live: dict) -> dict:
    """``manifest`` carrying the live object's resourceVersion, as a replace (PUT) requires."""
    body = copy.deepcopy(manifest)
    body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
    return body


def _wait_rolled_out(
    api, manifest: dict, previous: dict | None, deadline: float, poll_seconds: float, clock, sleep
) -> dict | None:
    """Waits until every Deployment of the SeldonDeployment runs the new model container, rolled out; returns
    the SeldonDeployment as it is then. A `Failed` state stops the wait, unless it is the previous spec's."""
    namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    stale_state = ((previous or {}).get("status") or {}).get("state")
    while True:
        live = _get(api, namespace, name)
        status = (live or {}).get("status") or {}
        state = status.get("state", "")
        if state != stale_state:
            stale_state = None  # the operator has written a status for the new spec
        if state == FAILED and stale_state is None:
            raise ClusterDeploymentError(
                f"SeldonDeployment {namespace}/{name} failed: {status.get('description', 'no description')}"
            )
        deployments = api.list_namespaced_deployment(namespace, label_selector=f"{SELDON_ID_LABEL}={name}").items
        waiting = _not_rolled_out(manifest, deployments)
        if not waiting:
            return live
        if clock() >= deadline:
            raise ClusterDeploymentError(
                f"SeldonDeployment {namespace}/{name} not rolled out before the timeout: {waiting} (state "
                f"{state or 'none'!r}: {status.get('description', 'no description')}); see `kubectl -n {namespace} "
                f"describe seldondeployment {name}` and `kubectl -n {namespace} get pods -l {SELDON_ID_LABEL}={name}`"
            )
        sleep(poll_seconds)


def _not_rolled_out(manifest: dict, deployments: list) -> str:
    """Why the rollout is not complete yet ('' when it is)."""
    if not deployments:
        return "the operator has not created its Deployment yet"
    expected = _model_container(manifest)
    for deployment in deployments:
        what = f"Deployment {deployment.metadata.name}"
        containers = {container.name: container for container in deployment.spec.template.spec.containers}
        served = containers.get(expected["name"])
        if served is not None and not _same_model_container(expected, served):
            return f"{what} still has the previous model container"
        spec_replicas = deployment.spec.replicas if deployment.spec.replicas is not None else 1
        status = deployment.status
        # The conditions of `kubectl rollout status` (k8s.io/kubectl/pkg/polymorphichelpers/rollout_status.go).
        if (status.observed_generation or 0) < (deployment.metadata.generation or 0):
            return f"{what}: the new spec is not observed yet"
        for condition in status.conditions or []:
            if condition.type == "Progressing" and condition.reason == "ProgressDeadlineExceeded":
                raise ClusterDeploymentError(
                    f"{what} exceeded its progress deadline: {condition.message or 'no message'}; see `kubectl -n "
                    f"{deployment.metadata.namespace or manifest['metadata']['namespace']} get pods -l "
                    f"{SELDON_ID_LABEL}={manifest['metadata']['name']}`"
                )
        updated, replicas, available = (
            status.updated_replicas or 0,
            status.replicas or 0,
            status.available_replicas or 0,
        )
        if updated < spec_replicas:
            return f"{what}: {updated} of {spec_replicas} replicas updated"
        if replicas > updated:
            return f"{what}: {replicas - updated} old replica(s) pending termination"
        if available < updated:
            return f"{what}: {available} of {updated} updated replicas available"
    if not any(expected["name"] in {c.name for c in d.spec.template.spec.containers} for d in deployments):
        return f"no Deployment has the model container {expected['name']!r} yet"
    return ""


def _model_container(manifest: dict) -> dict:
    """What identifies the manifest's model container in a Deployment: its name, image and graph parameters."""
    container = manifests.model_container(manifest)
    (predictor,) = manifest["spec"]["predictors"]
    return {"name": container["name"], "image": container["image"], "parameters": predictor["graph"].get("parameters")}


def _same_model_container(expected: dict, served) -> bool:
    """Whether a Deployment's container is the manifest's: same image, and the graph parameters (model digest
    and version) the operator injects as PREDICTIVE_UNIT_PARAMETERS."""
    if served.image != expected["image"]:
        return False
    env = {variable.name: variable.value for variable in served.env or []}
    try:
        injected = json.loads(env.get("PREDICTIVE_UNIT_PARAMETERS") or "[]")
    except ValueError:
        return False
    return _parameter_set(injected) == _parameter_set(expected["parameters"])


def _parameter_set(parameters) -> set[tuple]:
    return {(p.get("name"), p.get("type"), str(p.get("value"))) for p in parameters or [] if isinstance(p, dict)}


def _roll_back(api, namespace: str, name: str, previous: dict | None) -> str:
    """Puts the previous spec back (retrying a 409 Conflict from a fresh GET), or deletes an object that did not
    exist before; says what it did, or why it could not."""
    from kubernetes.client.exceptions import ApiException

    try:
        if previous is None:
            try:
                api.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
            except ApiException as error:
                if error.status != 404:
                    raise
            return f"deleted the new SeldonDeployment {namespace}/{name}"
        restored = {key: previous[key] for key in ("apiVersion", "kind", "spec")}
        restored["metadata"] = {
            "name": name,
            "namespace": namespace,
            "labels": previous["metadata"].get("labels", {}),
            "annotations": previous["metadata"].get("annotations", {}),
        }
        _apply(api, restored)
        return f"restored the previous spec of SeldonDeployment {namespace}/{name}"
    except Exception as error:  # reported with the error that caused the rollback
        return (
            f"rolling back SeldonDeployment {namespace}/{name} failed too ({_describe(error, 'rolling back')}): "
            f"check it with `kubectl -n {namespace} get seldondeployment {name} -o yaml`"
        )


def _api_error(error) -> str:
    """An ApiException as `<status> <reason>: <message>` (the API server's or webhook's message from the body)."""
    message = ""
    try:
        message = json.loads(error.body or "{}").get("message", "")
    except (TypeError, ValueError, AttributeError):
        message = str(error.body or "")[:500]
    return f"{error.status} {error.reason}" + (f": {message}" if message else "")


def _describe(error: Exception, doing: str) -> str:
    from kubernetes.client.exceptions import ApiException

    if isinstance(error, ApiException):
        return f"Kubernetes API error while {doing}: {_api_error(error)}"
    return f"error while {doing}: {type(error).__name__}: {error}"
