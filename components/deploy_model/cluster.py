"""Rolling a model's serving resource out through the Kubernetes API: create or replace, follow the rollout,
smoke-test, roll back. One sequence for both control planes: a Seldon Core 1.17.1 SeldonDeployment and a KServe
v0.20.0 InferenceService in Standard (raw Deployment) mode; what differs between them (the API coordinates, the
Deployments' label and model container, what the status says, the Service) is read from platforms.py.

The API object, the clock and the smoke test are passed in, so the whole sequence is unit-tested against a
recording fake (components/deploy_model/tests/test_cluster.py, test_cluster_kserve.py) with the objects each
controller and the Deployment controller write.

Why the rollout, not the custom resource's status, decides: neither status proves that the new model serves.
Seldon's has no observedGeneration, so right after a replace it still says `Available` for the previous spec, and
keeps saying so while the old pod serves (it counts a Deployment ready while any replica is). KServe's Ready
condition is copied from the predictor Deployment's Available, so it stays True while the old pod serves, and its
observedGeneration is the Deployment's, not the InferenceService's (platforms.py has the sources). Both controllers
render the model into apps/v1 Deployments carrying their label; the wait requires every one of them to carry the
new model container (the image, and the digest and version it is given: Seldon's graph parameters, KServe's
container args) and to have finished rolling it out, as `kubectl rollout status` judges it, and KServe's status to
say Ready after observing that Deployment. The smoke test then checks the digest the served model reports, so an
old pod can never pass for a new version. (About 290 lines: one sequence, apply, wait, smoke test, roll back, whose
every step ends in the same rollback on failure, so it is kept in one module.)
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from components.deploy_model import manifests, platforms
from components.deploy_model.platforms import Platform

CONFLICT_ATTEMPTS = 5  # a replace racing the controller's status writes gets 409 Conflict; re-read and retry


class ClusterDeploymentError(RuntimeError):
    """The SeldonDeployment or InferenceService could not be applied, did not roll out or failed its smoke test
    (then rolled back)."""


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


def roll_out(
    api,
    manifest: dict,
    smoke_test: Callable[[str], None],
    timeout: float = 600.0,
    poll_seconds: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Rollout:
    """Applies ``manifest`` (a SeldonDeployment or an InferenceService), waits for its rollout, then
    ``smoke_test(base_url)`` until it passes.

    The live object is replaced, not merge-patched, so its spec is exactly the rendered manifest. Until the
    deadline, a failing smoke test is retried (the server may need a moment after the pods are ready). Any
    failure after the write, including an API error while waiting, puts the previous spec back (or deletes the
    new object) and raises ClusterDeploymentError saying why, and how the rollback went.
    """
    from kubernetes.client.exceptions import ApiException

    platform = platforms.for_manifest(manifest)
    what = platform.describe(manifest)
    try:
        previous = _apply(api, platform, manifest)
    except ApiException as error:  # refused (webhook, RBAC, conflicts to the last attempt): nothing changed
        raise ClusterDeploymentError(f"writing {what} was refused, nothing was changed: {_api_error(error)}") from error
    except Exception as error:  # no answer: whether the write landed is unknown
        raise ClusterDeploymentError(
            f"writing {what} failed ({_describe(error, 'writing')}); it may or may not have been applied: check "
            f"{platform.kubectl(manifest, 'get')}"
        ) from error

    deadline = clock() + timeout
    try:
        live = _wait_rolled_out(api, platform, manifest, previous, deadline, poll_seconds, clock, sleep)
        url = platform.base_url(manifest, live)
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
        raise ClusterDeploymentError(f"{reason}; {_roll_back(api, platform, manifest, previous)}") from error
    return Rollout(url, url + platform.predictions_path(manifest), replaced_existing=previous is not None)


def _apply(api, platform: Platform, manifest: dict) -> dict | None:
    """Creates or replaces the object; returns what it replaced (None: it did not exist). A 409 Conflict (the
    controller wrote the status in between, or someone created it first) is retried from a fresh GET."""
    from kubernetes.client.exceptions import ApiException

    namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    resource = (platform.group, platform.version, namespace, platform.plural)
    attempts = 0
    while True:
        live = _get(api, platform, namespace, name)
        try:
            if live is None:
                api.create_namespaced_custom_object(*resource, manifest)
            else:
                api.replace_namespaced_custom_object(*resource, name, _replacing(manifest, live))
            return live
        except ApiException as error:
            attempts += 1
            if error.status != 409 or attempts >= CONFLICT_ATTEMPTS:
                raise


def _get(api, platform: Platform, namespace: str, name: str) -> dict | None:
    from kubernetes.client.exceptions import ApiException

    try:
        return api.get_namespaced_custom_object(platform.group, platform.version, namespace, platform.plural, name)
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
    api, platform: Platform, manifest: dict, previous: dict | None, deadline: float, poll_seconds: float, clock, sleep
) -> dict | None:
    """Waits until every Deployment of the object runs the new model container, rolled out, and the platform's
    status counts it ready; returns the object as it is then. A definitive failure in the status stops the wait
    once the status is the new spec's: one left over from the previous spec never decides."""
    namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    what = platform.describe(manifest)
    selector = platform.workloads_selector(manifest)
    current = False
    while True:
        live = _get(api, platform, namespace, name)
        deployments = api.list_namespaced_deployment(namespace, label_selector=selector).items
        current = current or platform.status_is_current(manifest, live, previous, deployments)
        failure = platform.failure(live) if current else ""
        if failure:
            raise ClusterDeploymentError(f"{what} failed: {failure}")
        waiting = _not_rolled_out(platform, manifest, deployments) or platform.not_ready(manifest, live, deployments)
        if not waiting:
            return live
        if clock() >= deadline:
            raise ClusterDeploymentError(
                f"{what} not rolled out before the timeout: {waiting} ({platform.status_summary(live)}); see "
                f"{platform.kubectl(manifest, 'describe')} and {platform.kubectl_pods(manifest)}"
            )
        sleep(poll_seconds)


def _not_rolled_out(platform: Platform, manifest: dict, deployments: list) -> str:
    """Why the rollout is not complete yet ('' when it is)."""
    if not deployments:
        return "the controller has not created its Deployment yet"
    model = manifests.model_container(manifest)["name"]
    for deployment in deployments:
        what = f"Deployment {deployment.metadata.name}"
        containers = {container.name: container for container in deployment.spec.template.spec.containers}
        served = containers.get(model)
        if served is not None and not platform.runs_manifest_container(manifest, served):
            return f"{what} still has the previous model container"
        spec_replicas = deployment.spec.replicas if deployment.spec.replicas is not None else 1
        status = deployment.status
        # The conditions of `kubectl rollout status` (k8s.io/kubectl/pkg/polymorphichelpers/rollout_status.go).
        if (status.observed_generation or 0) < (deployment.metadata.generation or 0):
            return f"{what}: the new spec is not observed yet"
        for condition in status.conditions or []:
            if condition.type == "Progressing" and condition.reason == "ProgressDeadlineExceeded":
                raise ClusterDeploymentError(
                    f"{what} exceeded its progress deadline: {condition.message or 'no message'}; see "
                    f"{platform.kubectl_pods(manifest)}"
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
    if not any(model in {c.name for c in d.spec.template.spec.containers} for d in deployments):
        return f"no Deployment has the model container {model!r} yet"
    return ""


def _roll_back(api, platform: Platform, manifest: dict, previous: dict | None) -> str:
    """Puts the previous spec back (retrying a 409 Conflict from a fresh GET), or deletes an object that did not
    exist before; says what it did, or why it could not."""
    from kubernetes.client.exceptions import ApiException

    namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    what = platform.describe(manifest)
    try:
        if previous is None:
            try:
                api.delete_namespaced_custom_object(platform.group, platform.version, namespace, platform.plural, name)
            except ApiException as error:
                if error.status != 404:
                    raise
            return f"deleted the new {what}"
        restored = {key: previous[key] for key in ("apiVersion", "kind", "spec")}
        restored["metadata"] = {
            "name": name,
            "namespace": namespace,
            "labels": previous["metadata"].get("labels", {}),
            "annotations": previous["metadata"].get("annotations", {}),
        }
        _apply(api, platform, restored)
        return f"restored the previous spec of {what}"
    except Exception as error:  # reported with the error that caused the rollback
        return (
            f"rolling back {what} failed too ({_describe(error, 'rolling back')}): check it with "
            f"{platform.kubectl(manifest, 'get', '-o', 'yaml')}"
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
