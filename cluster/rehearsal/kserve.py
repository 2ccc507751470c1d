"""What KServe v0.20.0 in Standard mode does with the InferenceService the deploy step renders, with the real
serving container (serving-notes §C'; the KServe source at v0.20.0, paths below under pkg/ and python/):

- ``inference_service``: the InferenceService the deploy step would render with ``serving_platform=kserve`` for
  the version a rendered SeldonDeployment serves (components.deploy_model.manifests.build_manifest, from what the
  SeldonDeployment carries: its kfp-mlops/* annotations, its namespace and the model container's image);
- ``pod_container``: its ``kserve-container`` as the predictor Deployment's pod runs it. The controller copies the
  container unchanged (CustomPredictor.GetContainer), so its args reach the image exactly as rendered, and adds
  ``INFERENCE_SERVICE_NAME`` (controller/v1beta1/inferenceservice/components/predictor.go, AddEnvVarToPodSpec);
  the pod webhook's storage initializer copies ``STORAGE_URI`` to /mnt/models, mounts it read-only (the
  ``storage.kserve.io/readonly`` default) and rewrites the variable to /mnt/models
  (webhook/admission/pod/storage_initializer_injector.go, CommonStorageInitialization). Nothing else changes the
  container: the agent and metrics-aggregation injectors act only on annotations this InferenceService does not
  carry, queue-proxy and ``PORT`` are Knative mode's, and no runAsUser is set (the image's user runs the server);
- ``provision``: the files as KServe's storage initializer leaves them for that container: the rehearsal's storage
  copy (the same objects of the same URI), owned by the initializer image's user (uid 1000,
  python/storage-initializer.Dockerfile) with the modes its Python downloader writes under the default umask, in
  an emptyDir (mode 0777): the server reads files another user owns, as in the cluster;
- cluster.rehearsal.model_pod, shared with the Seldon form, starts that container (the declared ports, the memory
  limit, the probes as the kubelet checks them) and runs the deploy step's smoke test against it and scrapes its
  metrics where the KServe PodMonitor does (``scrape_endpoint``: cluster/monitoring/podmonitor-kserve.yaml).

KServe's initializer image itself (boto3, credentials from the ServiceAccount's annotated Secret) needs a cluster:
tests/cluster.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import yaml

from cluster.rehearsal.common import REPO_ROOT, RehearsalError
from cluster.rehearsal.model_pod import MODEL_MOUNT, PodContainer
from components.deploy_model.manifests import (
    DEPLOYMENT_MODE_ANNOTATION,
    RUN_ANNOTATION,
    STANDARD_MODE,
    STORAGE_URI_ENV,
    VERSION_ANNOTATIONS,
    build_manifest,
    model_container,
    served_model_name,
)
from components.deploy_model.platforms import KSERVE
from components.deploy_model.smoke import DeploymentError

NAME_ENV = "INFERENCE_SERVICE_NAME"  # constants.InferenceServiceNameEnvVarKey: the controller's one addition
INITIALIZER_UID = 1000  # the storage initializer image's USER
EMPTY_DIR_MODE, DIRECTORY_MODE, FILE_MODE = 0o777, 0o755, 0o644  # an emptyDir; os.makedirs and open() at umask 022
# Where Prometheus scrapes a KServe model pod (`PROMETHEUS=1 make cluster` applies it).
PODMONITOR = REPO_ROOT / "cluster" / "monitoring" / "podmonitor-kserve.yaml"
DEFAULT_SCRAPE_PATH = "/metrics"  # the Prometheus Operator's, for an endpoint without a path


def inference_service(seldon_deployment: dict) -> dict:
    """The InferenceService for the version ``seldon_deployment`` serves, as the deploy step renders it with
    ``serving_platform=kserve``: same registered model, version, digest, model URI, namespace, KFP run and image."""
    metadata = seldon_deployment["metadata"]
    annotations = metadata.get("annotations", {})
    missing = [key for key in VERSION_ANNOTATIONS.values() if not annotations.get(key)]
    if missing:
        raise RehearsalError(
            f"SeldonDeployment {metadata['name']} lacks the annotation(s) {missing} the deploy step writes: "
            "the InferenceService for its version cannot be rendered"
        )
    return build_manifest(
        KSERVE.name,
        **{argument: annotations[key] for argument, key in VERSION_ANNOTATIONS.items()},
        namespace=metadata["namespace"],
        image=model_container(seldon_deployment)["image"],
        pipeline_job_id=annotations.get(RUN_ANNOTATION, ""),
    )


def pod_container(manifest: dict) -> PodContainer:
    """The InferenceService's model container as KServe's Standard mode runs it: args as rendered, env as rendered
    plus ``INFERENCE_SERVICE_NAME`` and with ``STORAGE_URI`` rewritten to /mnt/models, the OIP model name the
    deploy step calls, metrics where the KServe PodMonitor scrapes them (``scrape_endpoint``). RehearsalError names
    what in ``manifest`` this cannot be derived from (a container without the port the PodMonitor scrapes too)."""
    name = manifest.get("metadata", {}).get("name")
    identity = (manifest.get("apiVersion"), manifest.get("kind"))
    if identity != (KSERVE.api_version, KSERVE.kind):
        raise RehearsalError(f"{identity[1]} {name} ({identity[0]}) is no {KSERVE.kind} ({KSERVE.api_version})")
    mode = manifest["metadata"].get("annotations", {}).get(DEPLOYMENT_MODE_ANNOTATION)
    if mode != STANDARD_MODE:
        # Knative mode adds queue-proxy and PORT and allows one port: another pod than the one started here.
        raise RehearsalError(
            f"InferenceService {name}: annotation {DEPLOYMENT_MODE_ANNOTATION} is {mode!r}; the rehearsal starts "
            f"the pod of {STANDARD_MODE!r} mode only"
        )
    try:
        spec, model_name = model_container(manifest), served_model_name(manifest)
    except DeploymentError as error:
        raise RehearsalError(str(error)) from error
    env = {}
    for variable in spec.get("env", []):
        if "value" not in variable:
            raise RehearsalError(
                f"InferenceService {name}: env {variable['name']} of container {spec['name']} has no literal value "
                f"({sorted(set(variable) - {'name'})}); the rehearsal passes only literal values"
            )
        env[variable["name"]] = str(variable["value"])
    if not env.get(STORAGE_URI_ENV):
        raise RehearsalError(
            f"InferenceService {name}: container {spec['name']} has no {STORAGE_URI_ENV}; KServe would add no "
            f"storage initializer and {MODEL_MOUNT} would be empty"
        )
    env[NAME_ENV] = name  # the controller's, overwriting any of the manifest's
    env[STORAGE_URI_ENV] = MODEL_MOUNT  # the webhook's rewrite, once the initializer has copied the URI there
    metrics_port, metrics_path = scrape_endpoint()
    return PodContainer(
        spec=spec,
        env=env,
        model_name=model_name,
        metrics_port=metrics_port,
        metrics_path=metrics_path,
    )


def scrape_endpoint(podmonitor: Path = PODMONITOR) -> tuple[str, str]:
    """The port name and path Prometheus scrapes on a KServe model pod: the one endpoint of the PodMonitor in
    ``podmonitor``."""
    monitors = [doc for doc in yaml.safe_load_all(podmonitor.read_text()) if doc and doc.get("kind") == "PodMonitor"]
    endpoints = [endpoint for monitor in monitors for endpoint in monitor["spec"].get("podMetricsEndpoints", [])]
    if len(endpoints) != 1 or "port" not in endpoints[0]:
        raise RehearsalError(f"{podmonitor} must hold one PodMonitor endpoint naming a port, found {endpoints}")
    return endpoints[0]["port"], endpoints[0].get("path", DEFAULT_SCRAPE_PATH)


def provision(storage_copy: Path, destination: Path) -> Path:
    """``storage_copy`` (the storage stage's files) at ``destination`` as KServe's storage initializer leaves them
    for the model container: owned by uid/gid 1000, directories 0755 and files 0644 below an emptyDir root of mode
    0777. ``destination`` must not exist; the caller mounts it read-only, as the webhook does. Returns it."""
    destination = Path(destination)
    shutil.copytree(storage_copy, destination)
    for path in [destination, *destination.rglob("*")]:
        os.chown(path, INITIALIZER_UID, INITIALIZER_UID, follow_symlinks=False)
        path.chmod(DIRECTORY_MODE if path.is_dir() else FILE_MODE)
    destination.chmod(EMPTY_DIR_MODE)
    return destination
