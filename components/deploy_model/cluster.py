"""Deploying a SeldonDeployment through the Kubernetes API: create or replace, wait, smoke-test, roll back.

The API object, the clock and the smoke test are passed in, so the whole sequence is unit-tested against a
recording fake (tests/unit/test_deploy_cluster.py) with the status shapes the Seldon Core operator writes.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

GROUP = "machinelearning.seldon.io"
VERSION = "v1"
PLURAL = "seldondeployments"
AVAILABLE = "Available"
FAILED = "Failed"


class ClusterDeploymentError(RuntimeError):
    """The SeldonDeployment did not become Available or failed its smoke test; it was rolled back."""


@dataclass(frozen=True)
class Rollout:
    """What happened: the predictions URL in the cluster and whether the deployment existed before."""

    predictions_url: str
    replaced_existing: bool


def load_api():
    """A CustomObjectsApi from the pod's service account (in a pipeline step) or the local kubeconfig."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.CustomObjectsApi()


def predictions_url(manifest: dict) -> str:
    """The in-cluster URL of the predictor's service (Seldon's executor, port 8000)."""
    namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    predictor = manifest["spec"]["predictors"][0]["name"]
    return f"http://{name}-{predictor}.{namespace}.svc.cluster.local:8000/api/v1.0/predictions"


def roll_out(
    api,
    manifest: dict,
    smoke_test: Callable[[str], None],
    timeout: float = 600.0,
    poll_seconds: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Rollout:
    """Applies ``manifest``, waits until Seldon reports it Available, then ``smoke_test(url)`` until it passes.

    The live object is replaced, not merge-patched, so its spec is exactly the rendered manifest. Until the
    deadline, a failing smoke test is retried: right after a replace the previous pods may still answer. On any
    failure the previous spec is put back (or the new object deleted) and ClusterDeploymentError says why.
    """
    namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    previous = _get(api, namespace, name)
    if previous is None:
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest)
    else:
        api.replace_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, _replacing(manifest, previous))

    deadline = clock() + timeout
    url = predictions_url(manifest)
    try:
        _wait_available(api, namespace, name, deadline, poll_seconds, clock, sleep)
        while True:
            try:
                smoke_test(url)
                break
            except RuntimeError as error:  # the smoke test's DeploymentError: wrong or no answer yet
                if clock() >= deadline:
                    raise ClusterDeploymentError(
                        f"smoke test of {url} still failing after {timeout:.0f} s: {error}"
                    ) from error
                sleep(poll_seconds)
    except ClusterDeploymentError as error:
        raise ClusterDeploymentError(f"{error}; {_roll_back(api, namespace, name, previous)}") from error
    return Rollout(url, replaced_existing=previous is not None)


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


def _wait_available(api, namespace: str, name: str, deadline: float, poll_seconds: float, clock, sleep) -> None:
    status: dict = {}
    while True:
        status = (_get(api, namespace, name) or {}).get("status") or {}
        state = status.get("state", "")
        if state == AVAILABLE:
            return
        if state == FAILED:
            raise ClusterDeploymentError(
                f"SeldonDeployment {namespace}/{name} failed: {status.get('description', 'no description')}"
            )
        if clock() >= deadline:
            raise ClusterDeploymentError(
                f"SeldonDeployment {namespace}/{name} not Available before the timeout (state {state or 'none'!r}: "
                f"{status.get('description', 'no description')}); see `kubectl -n {namespace} describe "
                f"seldondeployment {name}` and `kubectl -n {namespace} get pods`"
            )
        sleep(poll_seconds)


def _roll_back(api, namespace: str, name: str, previous: dict | None) -> str:
    """Puts the previous spec back, or deletes an object that did not exist before; says what it did."""
    from kubernetes.client.exceptions import ApiException

    try:
        if previous is None:
            api.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
            return f"deleted the new SeldonDeployment {namespace}/{name}"
        live = _get(api, namespace, name)
        restored = {key: previous[key] for key in ("apiVersion", "kind", "spec")}
        restored["metadata"] = {
            "name": name,
            "namespace": namespace,
            "labels": previous["metadata"].get("labels", {}),
            "annotations": previous["metadata"].get("annotations", {}),
        }
        if live is None:
            api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, restored)
        else:
            api.replace_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, _replacing(restored, live))
        return f"restored the previous spec of SeldonDeployment {namespace}/{name}"
    except ApiException as error:
        return f"rolling back SeldonDeployment {namespace}/{name} failed too ({error.status} {error.reason})"
