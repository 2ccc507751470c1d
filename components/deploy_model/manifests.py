"""The SeldonDeployment this project renders for a registered model version (Seldon Core 1.17.1, ``protocol: v2``).

The container contract follows what the operator does for a custom container (serving-notes §A1, §6): the graph
node, its container and the Open Inference Protocol model name are one name; the operator injects
``PREDICTIVE_UNIT_ID`` (= container name), the ports of the container's named ports, ``MLSERVER_MODEL_URI=/mnt/models``
(where the rclone storage initializer copies ``modelUri``), the graph parameters as ``PREDICTIVE_UNIT_PARAMETERS`` and
the metrics port and path; ``python -m serving`` reads exactly those.
"""

from __future__ import annotations

import re

from components.deploy_model.smoke import DeploymentError

RCLONE_SECRET = "seldon-rclone-secret"
PREDICTOR = "default"
# Named container ports: the operator keeps declared `http`/`grpc`/`metrics` ports and injects their numbers, so the
# image runs the same under Seldon and as a KServe predictor (8080). 8000 and 5001 are the executor's, in this pod.
PORTS = {"http": 8080, "grpc": 8081, "metrics": 8082}
METRICS_PATH = "/prometheus"  # the operator's default, what Seldon's PodMonitor scrapes on the `metrics` port
PROTOCOLS = ("seldon", "tensorflow", "kfserving", "v2")  # what the operator's webhook accepts
# The predictor Service is `<name>-<predictor>` only while that fits a DNS label (63 characters); longer, Seldon
# names it after a hash, and a Service name must start with a letter (DNS-1035).
MAX_NAME_LENGTH = 63 - len(f"-{PREDICTOR}")


def deployment_name(model_name: str) -> str:
    """``model_name`` as the SeldonDeployment's name, its graph node and the OIP model name.

    Characters Kubernetes does not allow become '-' (``House_Prices`` -> ``house-prices``); a name that does not
    start with a letter, or is longer than the predictor Service name allows, is refused rather than cut (two
    models would otherwise share a deployment).
    """
    name = re.sub(r"[^a-z0-9-]+", "-", model_name.lower()).strip("-")
    if not name:
        raise DeploymentError(f"model_name {model_name!r} gives no valid Kubernetes name")
    if not name[0].isalpha():
        raise DeploymentError(
            f"model_name {model_name!r} gives the Kubernetes name {name!r}, which does not start with a letter: "
            "Seldon names Services after it, and a Service name must (DNS-1035); register the model under a name "
            "that starts with a letter"
        )
    if len(name) > MAX_NAME_LENGTH:
        raise DeploymentError(
            f"model_name {model_name!r} gives the Kubernetes name {name!r} of {len(name)} characters; at most "
            f"{MAX_NAME_LENGTH} fit the predictor Service name {name[:8]}...-{PREDICTOR} (63 characters); register "
            "the model under a shorter name"
        )
    return name


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
    name = deployment_name(model_name)
    labels = {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/part-of": "kfp-mlops",
        "kfp-mlops/model-version": str(model_version),
    }
    return {
        "apiVersion": "machinelearning.seldon.io/v1",
        "kind": "SeldonDeployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": {
                "kfp-mlops/registered-model": model_name,
                "kfp-mlops/model-version": str(model_version),
                "kfp-mlops/model-sha256": model_sha256,
                "kfp-mlops/model-uri": model_uri,
                "kfp-mlops/kfp-run-id": pipeline_job_id,
            },
        },
        "spec": {
            "name": name,
            "protocol": "v2",
            "predictors": [
                {
                    "name": PREDICTOR,
                    "replicas": 1,
                    "labels": labels,
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
                    "componentSpecs": [{"spec": {"containers": [_model_container(name, image)]}}],
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


def _model_container(name: str, image: str) -> dict:
    # Without probes the operator adds TCP ones, which pass before the model is loaded: readiness asks the model.
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": port, "containerPort": number, "protocol": "TCP"} for port, number in PORTS.items()],
        "readinessProbe": {
            "httpGet": {"path": f"/v2/models/{name}/ready", "port": "http"},
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
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
    }


def model_container(manifest: dict) -> dict:
    """The container serving the graph's (single) node."""
    (predictor,) = manifest["spec"]["predictors"]
    node = predictor["graph"]["name"]
    for component in predictor["componentSpecs"]:
        for container in component["spec"]["containers"]:
            if container["name"] == node:
                return container
    raise DeploymentError(f"SeldonDeployment {manifest['metadata']['name']} has no container named {node!r}")
