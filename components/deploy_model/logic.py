"""Deploys a registered model version and, only when it serves correctly, makes it the champion.

Targets:
- ``kubernetes``: create or replace the SeldonDeployment, wait until the operator reports it Available,
  smoke-test it through its in-cluster service, then move the registry alias ``champion``; on failure the
  previous spec is restored (or the new object deleted) and the alias is left alone (see cluster.py).
- ``local``: serve it on this machine with the Seldon Core Python server (from .venv-serving), smoke-test
  it, then move ``champion``; on failure the previous local server is restored and the alias is left alone.
  ``serve_champion_locally`` serves the current champion the same way when a run deployed nothing (run_local).
- ``none``: only render the SeldonDeployment a cluster would apply.
The SeldonDeployment manifest is rendered for every target, by the same builder.
"""

from __future__ import annotations

import json
import re
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from components._common import registry
from components._image import SERVING_IMAGE

if TYPE_CHECKING:
    from serving.local_server import LocalServer

TARGETS = ("kubernetes", "local", "none")
GRAPH_NODE = "model"
RCLONE_SECRET = "seldon-rclone-secret"
SMOKE_ROWS = 5


class DeploymentError(RuntimeError):
    """The model could not be deployed or failed its smoke test; the message says which and why."""


def check_target(deploy_target: str) -> str:
    if deploy_target not in TARGETS:
        raise DeploymentError(f"parameter deploy_target must be one of {TARGETS}, got {deploy_target!r}")
    return deploy_target


def deployment_name(model_name: str) -> str:
    """``model_name`` as a Kubernetes resource name (DNS-1123 label: lowercase alphanumerics and '-')."""
    name = re.sub(r"[^a-z0-9-]+", "-", model_name.lower()).strip("-")[:63].strip("-")
    if not name:
        raise DeploymentError(f"model_name {model_name!r} gives no valid Kubernetes name")
    return name


def build_seldon_deployment(
    model_name: str,
    model_version: str,
    model_uri: str,
    model_sha256: str,
    namespace: str = "models",
    image: str = SERVING_IMAGE,
    pipeline_job_id: str = "",
) -> dict:
    """The SeldonDeployment (machinelearning.seldon.io/v1) serving ``model_uri`` with this project's image.

    The operator's storage initializer copies ``model_uri`` to /mnt/models using the rclone Secret; the graph
    parameters tell our server where the files are and which digest they must have.
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
            "predictors": [
                {
                    "name": "default",
                    "replicas": 1,
                    "labels": labels,
                    "graph": {
                        "name": GRAPH_NODE,
                        "type": "MODEL",
                        "modelUri": model_uri,
                        "envSecretRefName": RCLONE_SECRET,
                        "parameters": [
                            {"name": "model_uri", "type": "STRING", "value": "/mnt/models"},
                            {"name": "model_sha256", "type": "STRING", "value": model_sha256},
                        ],
                    },
                    "componentSpecs": [
                        {
                            "spec": {
                                "containers": [
                                    {
                                        "name": GRAPH_NODE,
                                        "image": image,
                                        "imagePullPolicy": "IfNotPresent",
                                        "env": [
                                            {"name": "INCLUDE_METRICS_IN_CLIENT_RESPONSE", "value": "false"},
                                            {"name": "GUNICORN_WORKERS", "value": "1"},
                                        ],
                                        "resources": {
                                            "requests": {"cpu": "100m", "memory": "256Mi"},
                                            "limits": {"memory": "1Gi"},
                                        },
                                    }
                                ]
                            }
                        }
                    ],
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


def smoke_payload(rows: pd.DataFrame) -> bytes:
    """A Seldon request by column name for ``rows``: values exactly as they are (floats at full precision,
    unlike DataFrame.to_json), missing values as JSON null."""
    values = rows.astype(object).where(rows.notna(), None).to_numpy().tolist()
    payload = {"data": {"names": [str(column) for column in rows.columns], "ndarray": values}}
    # numpy scalars (int64, bool_) are not JSON-native; .item() gives the Python value.
    return json.dumps(payload, default=lambda value: value.item()).encode()


def smoke_test(predictions_url: str, rows: pd.DataFrame, expected: np.ndarray, timeout: float = 30.0) -> None:
    """Sends ``rows`` to the server and checks it answers with exactly the in-process predictions.

    Any other outcome (an error status, no answer, an answer that is not predictions) is a DeploymentError.
    """
    request = urllib.request.Request(
        predictions_url, data=smoke_payload(rows), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as error:
        raise DeploymentError(f"smoke test: {predictions_url} answered {error.code}: {error.read()[:500]!r}") from error
    except (urllib.error.URLError, OSError) as error:
        raise DeploymentError(f"smoke test: cannot reach {predictions_url}: {error}") from error

    try:
        served = np.asarray(json.loads(raw)["data"]["ndarray"]).reshape(-1)
    except (KeyError, TypeError, ValueError) as error:
        raise DeploymentError(
            f"smoke test: {predictions_url} did not answer with predictions: {raw[:500]!r}"
        ) from error
    if len(served) != len(rows):
        raise DeploymentError(f"smoke test: sent {len(rows)} rows, got {len(served)} predictions")
    expected = np.asarray(expected).reshape(-1)
    try:
        if expected.dtype.kind in "fi":
            matches = np.allclose(served.astype("float64"), expected.astype("float64"), rtol=1e-9, atol=0.0)
        else:
            matches = bool((served.astype(str) == expected.astype(str)).all())
    except ValueError as error:  # e.g. text where the model predicts numbers
        raise DeploymentError(f"smoke test: served predictions {served.tolist()} are not comparable") from error
    if not matches:
        raise DeploymentError(
            f"smoke test: served predictions {served.tolist()} differ from the model's {expected.tolist()}"
        )


def deploy_local(
    model_name: str,
    model_version: str,
    model_sha256: str,
    smoke_rows: pd.DataFrame,
    expected_predictions: np.ndarray,
    tracking_uri: str = "",
    http_port: int = 9000,
    metrics_port: int = 6000,
) -> str:
    """Serves the registered version locally, smoke-tests it, then makes it the champion; returns its URL.

    The files served are downloaded from the registry (as a cluster would), not taken from the pipeline's
    own artifact. On any failure the previously served model is restored and ``champion`` stays where it was.
    """
    client = registry.connect(tracking_uri)
    downloaded = _download_version(client, model_name, model_version)
    server = _serve_locally(
        model_name, model_version, downloaded, model_sha256, smoke_rows, expected_predictions, http_port, metrics_port
    )
    promote_champion(tracking_uri, model_name, model_version, _local_deployment_tags(server))
    return server.predictions_url


@dataclass(frozen=True)
class LocalChampion:
    """The champion version of ``model_name`` and the local server answering for it."""

    model_name: str
    version: str
    server: LocalServer
    started: bool  # False: the server already running on the port was serving this version, and was kept


class NoChampionError(DeploymentError):
    """The model has no version with the ``champion`` alias: none has passed the gate and been deployed."""


def serve_champion_locally(
    model_name: str, tracking_uri: str = "", http_port: int = 9000, metrics_port: int = 6000
) -> LocalChampion:
    """Makes sure ``model_name``'s current champion is what answers on ``http_port``.

    A run whose gate keeps the champion deploys nothing, so after ``make stop`` nothing would be serving it. When
    the server this tool runs on ``http_port`` already serves the champion's files (metrics on ``metrics_port``)
    and its health check reports the digest the registry recorded, it is kept. Otherwise the champion is served
    as the deploy step serves a version: downloaded from the registry, checked against the recorded digest
    (``model_sha256`` tag) before it is loaded, started in place of whatever ran on the port, smoke-tested with
    the input example of its model card; on failure the previous server is restored. The alias is not moved.
    """
    from model_bundle import BundleError, load
    from serving import local_server

    client = registry.connect(tracking_uri)
    champion = registry.version_by_alias(client, model_name, registry.CHAMPION)
    if champion is None:
        raise NoChampionError(
            f"{model_name} has no version with the alias {registry.CHAMPION!r} in the registry at "
            f"{client.tracking_uri}: no version has passed the gate and been deployed yet"
        )
    version = str(champion.version)
    sha256 = champion.tags.get("model_sha256")
    if not sha256:
        raise DeploymentError(
            f"{model_name} v{version} (the champion) has no model_sha256 tag: its files cannot be verified, "
            "so they are not served"
        )

    state = _local_serving_dir()
    current = next((s for s in local_server.running(state) if s.http_port == http_port), None)
    if (
        current is not None
        and current.metrics_port == metrics_port
        and _serves(current, _version_dir(model_name, version), sha256)
    ):
        return LocalChampion(model_name, version, current, started=False)

    downloaded = _download_version(client, model_name, version)
    try:
        bundle = load(downloaded, expected_sha256=sha256)
    except BundleError as error:
        raise DeploymentError(f"{model_name} v{version} (the champion) cannot be served: {error}") from error
    rows = _example_rows(bundle, f"{model_name} v{version}")
    server = _serve_locally(
        model_name, version, downloaded, sha256, rows, bundle.predict(rows), http_port, metrics_port
    )
    _tag_version(client, model_name, version, _local_deployment_tags(server))
    return LocalChampion(model_name, version, server, started=True)


def _serves(server: LocalServer, version_dir: Path, sha256: str) -> bool:
    """Whether ``server`` serves the files of ``version_dir`` with digest ``sha256``, and says so when asked."""
    from serving import local_server

    if not Path(server.model_dir).is_relative_to(version_dir) or server.model_sha256 != sha256:
        return False
    status = local_server.health(server)
    return status is not None and status.get("sha256") == sha256


def _example_rows(bundle, what: str) -> pd.DataFrame:
    """The model card's input example (one real training row) as the smoke test's request."""
    example = bundle.card.input_example
    missing = [name for name in bundle.feature_names if name not in example]
    if missing:
        raise DeploymentError(
            f"{what}: the input_example of its model card lacks feature(s) {missing}, so it cannot be smoke-tested"
        )
    return pd.DataFrame([{name: example[name] for name in bundle.feature_names}])


def _local_serving_dir() -> Path:
    return registry.local_state_dir() / "serving"


def _version_dir(model_name: str, model_version: str) -> Path:
    return _local_serving_dir() / "models" / deployment_name(model_name) / f"v{model_version}"


def _download_version(client, model_name: str, model_version: str) -> Path:
    """The registered version's files, freshly downloaded under the local serving directory."""
    version = client.get_model_version(model_name, model_version)
    model_dir = _version_dir(model_name, model_version)
    shutil.rmtree(model_dir, ignore_errors=True)
    return registry.download_version(version, model_dir)


def _serve_locally(
    model_name: str,
    model_version: str,
    model_dir: Path,
    model_sha256: str,
    smoke_rows: pd.DataFrame,
    expected_predictions: np.ndarray,
    http_port: int,
    metrics_port: int,
) -> LocalServer:
    """Starts a server for ``model_dir`` on ``http_port`` (replacing the one there) and smoke-tests it; on failure
    restores the server that ran there before and raises DeploymentError."""
    from serving import local_server

    state = _local_serving_dir()
    previous = next((s for s in local_server.running(state) if s.http_port == http_port), None)
    try:
        server = local_server.start(model_dir, model_sha256, state, http_port=http_port, metrics_port=metrics_port)
        smoke_test(server.predictions_url, smoke_rows, expected_predictions)
    except (local_server.LocalServerError, DeploymentError) as error:
        local_server.stop(http_port, state)
        raise DeploymentError(
            f"deploying {model_name} v{model_version} failed: {error}; {_restore(previous, state)}"
        ) from error
    return server


def _local_deployment_tags(server: LocalServer) -> dict[str, str]:
    return {"deployment.target": "local", "deployment.endpoint": server.predictions_url}


def deploy_kubernetes(
    manifest: dict,
    smoke_rows: pd.DataFrame,
    expected_predictions: np.ndarray,
    tracking_uri: str = "",
    timeout: float = 600.0,
    api=None,
) -> str:
    """Rolls ``manifest`` out to the cluster, smoke-tests it in the cluster, then makes it the champion.

    On any failure the cluster is rolled back and ``champion`` stays where it was. Returns the in-cluster
    predictions URL.
    """
    from components.deploy_model import cluster

    annotations = manifest["metadata"]["annotations"]
    model_name, model_version = annotations["kfp-mlops/registered-model"], annotations["kfp-mlops/model-version"]
    try:
        rollout = cluster.roll_out(
            api if api is not None else cluster.load_api(),
            manifest,
            lambda url: smoke_test(url, smoke_rows, expected_predictions),
            timeout=timeout,
        )
    except cluster.ClusterDeploymentError as error:
        raise DeploymentError(f"deploying {model_name} v{model_version} to Kubernetes failed: {error}") from error
    promote_champion(
        tracking_uri,
        model_name,
        model_version,
        {
            "deployment.target": "kubernetes",
            "deployment.namespace": manifest["metadata"]["namespace"],
            "deployment.name": manifest["metadata"]["name"],
            "deployment.endpoint": rollout.predictions_url,
        },
    )
    return rollout.predictions_url


def promote_champion(tracking_uri: str, model_name: str, model_version: str, tags: dict[str, str]) -> None:
    """Moves the ``champion`` alias to a version that serves correctly, and records where it is served."""
    client = registry.connect(tracking_uri)
    client.set_registered_model_alias(model_name, registry.CHAMPION, model_version)
    _tag_version(client, model_name, model_version, tags)


def _tag_version(client, model_name: str, model_version: str, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        client.set_model_version_tag(model_name, model_version, key, value)


def _restore(previous, state: Path) -> str:
    """Restarts the server that ran before a failed deployment; says what happened, for the error message."""
    from serving import local_server

    if previous is None:
        return "no server was running before"
    try:
        local_server.start(
            previous.model_dir,
            previous.model_sha256,
            state,
            previous.http_port,
            previous.metrics_port,
            previous.grpc_port,
        )
    except local_server.LocalServerError as error:
        return f"the previous server of {previous.model_dir} could not be restarted either: {error}"
    return f"restored the previous server of {previous.model_dir}"


def write_manifest(manifest: dict, path: str | Path) -> None:
    import yaml

    Path(path).write_text(yaml.safe_dump(manifest, sort_keys=False))
