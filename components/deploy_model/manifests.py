"""The custom resource the deploy step renders for a registered model version, for the control plane a cluster
runs (``serving_platform``): a SeldonDeployment (Seldon Core 1.17.1, ``protocol: v2``) or a KServe InferenceService
(v0.20.0, Standard mode). ``build_manifest`` is the one entry point.

Both run the same serving image in the same container (ports, probes, resources: ``_model_container``), so a version
is served alike on either: two control planes, one image. Only the way the container learns its model differs, and
``python -m serving`` reads both forms (serving/settings.py):

- Seldon (serving-notes §A1, §6): the graph node, its container and the Open Inference Protocol model name are one
  name; the operator injects ``PREDICTIVE_UNIT_ID`` (= container name), the ports of the container's named ports,
  ``MLSERVER_MODEL_URI=/mnt/models`` (where the rclone storage initializer copies ``modelUri`` with the
  ``RCLONE_SECRET`` Secret), the graph parameters (digest, version) as ``PREDICTIVE_UNIT_PARAMETERS`` and the
  metrics port and path.
- KServe (serving-notes §C'; KServe v0.20.0 source): a custom predictor whose container must be named
  ``kserve-container``, in Standard mode (a plain Deployment and Service ``<name>-predictor``: no Knative, no Istio).
  The pod webhook's storage initializer copies the container's ``STORAGE_URI`` to /mnt/models with the S3 Secret the
  predictor's ServiceAccount lists, and rewrites ``STORAGE_URI`` to /mnt/models; the controller passes the container
  through unchanged (CustomPredictor.GetContainer), so its args carry what Seldon's operator injects: the model name
  (``--model_name``, KServe's own convention), digest, version and ports.
"""

from __future__ import annotations

import re

from components.deploy_model.smoke import DeploymentError
from serving import settings

SERVING_PLATFORMS = ("seldon", "kserve")  # the serving_platform parameter's values

SELDON_API_VERSION, SELDON_KIND = "machinelearning.seldon.io/v1", "SeldonDeployment"
RCLONE_SECRET = "seldon-rclone-secret"
PREDICTOR = "default"
PROTOCOLS = ("seldon", "tensorflow", "kfserving", "v2")  # what the operator's webhook accepts

KSERVE_API_VERSION, KSERVE_KIND = "serving.kserve.io/v1beta1", "InferenceService"
KSERVE_CONTAINER = "kserve-container"  # constants.InferenceServiceContainerName: the controller serves only this one
# Lists the Secret with the object store's credentials and serving.kserve.io/s3-* annotations (cluster/manifests).
KSERVE_SERVICE_ACCOUNT = "kserve-model-storage"
STORAGE_URI_ENV = "STORAGE_URI"  # constants.CustomSpecStorageUriEnvVarKey: what the storage initializer copies
DEPLOYMENT_MODE_ANNOTATION, STANDARD_MODE = "serving.kserve.io/deploymentMode", "Standard"
# `none`: the Deployment keeps minReplicas (1) and no HorizontalPodAutoscaler is made, whose CPU metric a cluster
# without metrics-server (kind) could never read; the same fixed replica as the SeldonDeployment's.
AUTOSCALER_CLASS_ANNOTATION, NO_AUTOSCALER = "serving.kserve.io/autoscalerClass", "none"

# Both kinds' annotations linking the deployed resource to its registry version (by build_manifest's argument) and
# to the KFP run that deployed it: what kubectl shows, and what the rehearsal renders the other kind from.
VERSION_ANNOTATIONS = {
    "model_name": "kfp-mlops/registered-model",
    "model_version": "kfp-mlops/model-version",
    "model_sha256": "kfp-mlops/model-sha256",
    "model_uri": "kfp-mlops/model-uri",
}
RUN_ANNOTATION = "kfp-mlops/kfp-run-id"

# Named container ports, `http` first: Seldon's operator keeps declared `http`/`grpc`/`metrics` ports and injects
# their numbers (8000 and 5001 are its executor's, in the same pod); KServe's Service sends its port 80 to the first
# declared port and every other at its own number (service_reconciler.go, createDefaultSvc).
PORTS = {"http": 8080, "grpc": 8081, "metrics": 8082}
METRICS_PATH = "/prometheus"  # the operator's default, what the PodMonitors scrape on the `metrics` port

# Every name each control plane derives from the object's name must stay within 63 characters (a DNS label or a label
# value): Seldon's predictor Service `<name>-<predictor>`; KServe's predictor Deployment and Service
# `<name>-predictor`, and the label `app=isvc.<name>-predictor` on them and their pods (constants.GetRawServiceLabel).
PREDICTOR_SERVICES = {"seldon": f"{{name}}-{PREDICTOR}", "kserve": "{name}-predictor"}
LONGEST_DERIVED_NAMES = {"seldon": PREDICTOR_SERVICES["seldon"], "kserve": "isvc." + PREDICTOR_SERVICES["kserve"]}
MAX_NAME_LENGTHS = {platform: 63 - len(pattern.format(name="")) for platform, pattern in LONGEST_DERIVED_NAMES.items()}


def check_serving_platform(serving_platform: str) -> str:
    if serving_platform not in SERVING_PLATFORMS:
        raise DeploymentError(
            f"parameter serving_platform must be one of {SERVING_PLATFORMS}, got {serving_platform!r}"
        )
    return serving_platform


def check_namespace(namespace: str) -> str:
    """Refuses a ``namespace`` Kubernetes would not accept (a DNS-1123 label), which would otherwise reach the API
    server only as a refused request or be rendered into a manifest no cluster can apply."""
    if len(namespace) > 63 or not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", namespace):
        raise DeploymentError(
            f"parameter namespace {namespace!r} is not a Kubernetes namespace name: at most 63 lower-case letters, "
            "digits and '-', starting and ending with a letter or digit (e.g. models)"
        )
    return namespace


def deployment_name(model_name: str, serving_platform: str = "seldon") -> str:
    """``model_name`` as the name of the resource ``serving_platform`` serves it with, which is also the OIP model
    name (and, for Seldon, the graph node's and its container's).

    Characters Kubernetes does not allow become '-' (``House_Prices`` -> ``house-prices``); a name that does not
    start with a letter, or is longer than the names the control plane derives from it allow, is refused rather
    than cut (two models would otherwise share a deployment).
    """
    check_serving_platform(serving_platform)
    name = re.sub(r"[^a-z0-9-]+", "-", model_name.lower()).strip("-")
    if not name:
        raise DeploymentError(f"model_name {model_name!r} gives no valid Kubernetes name")
    if not name[0].isalpha():
        raise DeploymentError(
            f"model_name {model_name!r} gives the Kubernetes name {name!r}, which does not start with a letter: "
            "the control plane names Services after it, and a Service name must (DNS-1035); register the model "
            "under a name that starts with a letter"
        )
    limit = MAX_NAME_LENGTHS[serving_platform]
    if len(name) > limit:
        short = f"{name[:8]}..."
        service, longest = PREDICTOR_SERVICES[serving_platform], LONGEST_DERIVED_NAMES[serving_platform]
        derived = f"the predictor Service name {service.format(name=short)}"
        if longest != service:
            derived += f" and the label value {longest.format(name=short)}"
        raise DeploymentError(
            f"model_name {model_name!r} gives the Kubernetes name {name!r} of {len(name)} characters; at most "
            f"{limit} fit {derived} (63 characters) with serving_platform={serving_platform}; register the model "
            "under a shorter name"
        )
    return name


def build_manifest(
    serving_platform: str,
    model_name: str,
    model_version: str,
    model_uri: str,
    model_sha256: str,
    namespace: str = "models",
    *,
    image: str,
    pipeline_job_id: str = "",
) -> dict:
    """The resource ``serving_platform`` serves version ``model_version`` of ``model_name`` with: the
    SeldonDeployment (``seldon``) or the InferenceService (``kserve``); arguments as the two builders take them."""
    builders = {"seldon": build_seldon_deployment, "kserve": build_inference_service}
    return builders[check_serving_platform(serving_platform)](
        model_name,
        model_version,
        model_uri,
        model_sha256,
        check_namespace(namespace),
        image=image,
        pipeline_job_id=pipeline_job_id,
    )


def _metadata(
    name: str, namespace: str, model_name: str, model_version: str, model_uri: str, model_sha256: str, run_id: str
) -> dict:
    """The metadata both kinds carry: labels naming the model and version, annotations linking the registry
    version (name, version, digest, files) and the KFP run that deployed it."""
    version = {
        "model_name": model_name,
        "model_version": str(model_version),
        "model_sha256": model_sha256,
        "model_uri": model_uri,
    }
    return {
        "name": name,
        "namespace": namespace,
        "labels": {
            "app.kubernetes.io/name": name,
            "app.kubernetes.io/part-of": "kfp-mlops",
            "kfp-mlops/model-version": str(model_version),
        },
        "annotations": {
            **{VERSION_ANNOTATIONS[argument]: value for argument, value in version.items()},
            RUN_ANNOTATION: run_id,
        },
    }


def build_seldon_deployment(
    model_name: str,
    model_version: str,
    model_uri: str,
    model_sha256: str,
    namespace: str = "models",
    *,
    image: str,
    pipeline_job_id: str = "",
) -> dict:
    """The SeldonDeployment (machinelearning.seldon.io/v1) serving ``model_uri`` with the model server ``image``
    (this project's serving image: the deploy step's ``serving_image``, whose default is the pinned one).

    The operator's storage initializer copies ``model_uri`` to /mnt/models with the rclone Secret; the server
    checks the files against ``model_sha256`` before loading them and reports it, with ``model_version``, in the
    model metadata (what the deploy step's smoke test checks).
    """
    name = deployment_name(model_name, "seldon")
    metadata = _metadata(name, namespace, model_name, model_version, model_uri, model_sha256, pipeline_job_id)
    return {
        "apiVersion": SELDON_API_VERSION,
        "kind": SELDON_KIND,
        "metadata": metadata,
        "spec": {
            "name": name,
            "protocol": "v2",
            "predictors": [
                {
                    "name": PREDICTOR,
                    "replicas": 1,
                    "labels": dict(metadata["labels"]),
                    "graph": {
                        "name": name,
                        "type": "MODEL",
                        "modelUri": model_uri,
                        "envSecretRefName": RCLONE_SECRET,
                        "parameters": [
                            {"name": "model_sha256", "type": "STRING", "value": model_sha256},
                            {"name": "model_version", "type": "STRING", "value": str(model_version)},
                        ],
                    },
                    "componentSpecs": [{"spec": {"containers": [_model_container(name, name, image)]}}],
                    # The executor asks for 500m / 512Mi by default, which leaves pods Pending on small nodes.
                    "svcOrchSpec": {
                        "resources": {
                            "requests": {"cpu": "100m", "memory": "128Mi"},
                            "limits": {"memory": "512Mi"},
                        }
                    },
                }
            ],
        },
    }


def build_inference_service(
    model_name: str,
    model_version: str,
    model_uri: str,
    model_sha256: str,
    namespace: str = "models",
    *,
    image: str,
    pipeline_job_id: str = "",
) -> dict:
    """The InferenceService (serving.kserve.io/v1beta1, Standard mode) serving ``model_uri`` with the model server
    ``image`` as its custom predictor, in the same container as the SeldonDeployment's.

    KServe's storage initializer copies ``model_uri`` (``STORAGE_URI``) to /mnt/models with the Secret the
    ServiceAccount ``KSERVE_SERVICE_ACCOUNT`` lists; the container's args give the server its OIP model name, the
    digest it checks the files against (``--model_sha256``), the version it reports in the model metadata (what the
    deploy step's smoke test checks) and the ports it declares.
    """
    name = deployment_name(model_name, "kserve")
    metadata = _metadata(name, namespace, model_name, model_version, model_uri, model_sha256, pipeline_job_id)
    # Per object, not the installation's default (both of KServe's installers default to Knative mode).
    metadata["annotations"] = {
        DEPLOYMENT_MODE_ANNOTATION: STANDARD_MODE,
        AUTOSCALER_CLASS_ANNOTATION: NO_AUTOSCALER,
        **metadata["annotations"],
    }
    arguments = {"model_name": name, "model_sha256": model_sha256, "model_version": str(model_version)}
    arguments.update({f"{port}_port": number for port, number in PORTS.items()})
    return {
        "apiVersion": KSERVE_API_VERSION,
        "kind": KSERVE_KIND,
        "metadata": metadata,
        "spec": {
            "predictor": {
                "serviceAccountName": KSERVE_SERVICE_ACCOUNT,
                "minReplicas": 1,
                "maxReplicas": 1,
                "containers": [
                    _model_container(
                        KSERVE_CONTAINER,
                        name,
                        image,
                        args=[f"--{flag}={value}" for flag, value in arguments.items()],
                        env=[{"name": STORAGE_URI_ENV, "value": model_uri}],
                    )
                ],
            }
        },
    }


def _model_container(container_name: str, served_name: str, image: str, **how_it_learns_its_model) -> dict:
    """The model server's container, the same in both kinds but for its name and ``how_it_learns_its_model``
    (KServe's args and env; nothing for Seldon, whose operator injects env): the image's entry point serves the
    model ``served_name``."""
    # Without probes Seldon's operator adds TCP ones, and KServe one on the first port, which pass before the model
    # is loaded: readiness asks the model.
    return {
        "name": container_name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        **how_it_learns_its_model,
        "ports": [{"name": port, "containerPort": number, "protocol": "TCP"} for port, number in PORTS.items()],
        "readinessProbe": {
            "httpGet": {"path": f"/v2/models/{served_name}/ready", "port": "http"},
            "initialDelaySeconds": 5,
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
        # Generous: the process checks the files' digests and unpickles the model before it answers.
        "livenessProbe": {
            "httpGet": {"path": "/v2/health/live", "port": "http"},
            "initialDelaySeconds": 30,
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
        # KServe's webhook adds a request or limit left out here from its ConfigMap (the CPU limit: 1 by default).
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        # The server faces every caller: it runs as the image's user (8888, as Seldon's pods default to), never
        # root, and keeps no capabilities (it binds ports above 1024 and only reads /mnt/models).
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }


def model_container(manifest: dict) -> dict:
    """The model server's container: a SeldonDeployment's graph node's (single) container, an InferenceService's
    ``kserve-container``."""
    kind, name = manifest.get("kind"), manifest["metadata"]["name"]
    if kind == SELDON_KIND:
        (predictor,) = manifest["spec"]["predictors"]
        node = predictor["graph"]["name"]
        containers = [c for component in predictor["componentSpecs"] for c in component["spec"]["containers"]]
    elif kind == KSERVE_KIND:
        node, containers = KSERVE_CONTAINER, manifest["spec"]["predictor"].get("containers", [])
    else:
        raise DeploymentError(f"manifest {name}: kind {kind!r} is neither {SELDON_KIND} nor {KSERVE_KIND}")
    for container in containers:
        if container["name"] == node:
            return container
    raise DeploymentError(f"{kind} {name} has no container named {node!r}")


def served_model_name(manifest: dict) -> str:
    """The OIP model name the server in ``manifest`` answers to (``/v2/models/<name>/...``): a SeldonDeployment's
    graph node name (the operator's ``PREDICTIVE_UNIT_ID``), an InferenceService container's ``--model_name``, read
    as the server reads it."""
    if manifest.get("kind") == SELDON_KIND:
        (predictor,) = manifest["spec"]["predictors"]
        return predictor["graph"]["name"]
    container = model_container(manifest)
    served, _ = settings.parser().parse_known_args(container.get("args") or [])
    if not served.model_name:
        raise DeploymentError(
            f"{manifest['kind']} {manifest['metadata']['name']}: container {container['name']} passes no "
            f"--model_name argument, so the server would answer as its default model name: {container.get('args')}"
        )
    return served.model_name
