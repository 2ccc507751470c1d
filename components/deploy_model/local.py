"""The local target's mechanism: this project's model server (``python -m serving``, in the step's own Python
environment, through serving.local_server) started for a version's files, smoke-tested, and the previous one
restored on failure. Which version to serve, and when, is decided in logic.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from components._common import registry
from components.deploy_model.manifests import deployment_name
from components.deploy_model.smoke import DeploymentError, smoke_test

if TYPE_CHECKING:
    from serving.local_server import LocalServer


def serving_dir() -> Path:
    """Where local servers keep their records, logs and the files they serve (under the local state directory)."""
    return registry.local_state_dir() / "serving"


def version_dir(model_name: str, model_version: str) -> Path:
    """Where the files of one registered version are put to be served."""
    return serving_dir() / "models" / deployment_name(model_name) / f"v{model_version}"


def running_on(http_port: int) -> LocalServer | None:
    """The server this tool runs on ``http_port``, if any."""
    from serving import local_server

    return next((server for server in local_server.running(serving_dir()) if server.http_port == http_port), None)


def serves(server: LocalServer, model_name: str, version: str, sha256: str) -> bool:
    """Whether ``server`` answers for ``model_name`` and its metadata reports ``version`` with digest ``sha256``
    (what the server loaded, not what its record says it was asked to load)."""
    from serving import local_server

    if server.model_name != deployment_name(model_name):
        return False
    parameters = (local_server.health(server) or {}).get("parameters") or {}
    return parameters.get("sha256") == sha256 and str(parameters.get("model_version")) == version


def serve(
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
    restores the server that ran there before and raises DeploymentError. Once it serves, a server of another
    version of the model on another port is stopped (a rollback or a deploy on another ``serving_port`` would
    otherwise leave the model it replaces answering there): one version per model serves, as on a cluster, where
    a deployment replaces the model's one SeldonDeployment or InferenceService.

    The OIP model name is the one the cluster uses (the SeldonDeployment's graph node), so a client's URL is the
    same path locally and behind Seldon.
    """
    from serving import local_server

    name = deployment_name(model_name)
    state = serving_dir()
    previous = running_on(http_port)
    # Its registry version is a start parameter the record does not keep: read back from what it serves.
    previous_parameters = _version_parameter(local_server.health(previous)) if previous is not None else {}
    try:
        server = local_server.start(
            model_dir,
            model_sha256,
            state,
            http_port=http_port,
            metrics_port=metrics_port,
            parameters={"model_version": str(model_version)},
            model_name=name,
        )
        smoke_test(server.base_url, server.model_name, smoke_rows, expected_predictions, model_sha256)
    except (local_server.LocalServerError, DeploymentError) as error:
        local_server.stop(http_port, state)
        raise DeploymentError(
            f"deploying {model_name} v{model_version} failed: {error}; {_restore(previous, previous_parameters, state)}"
        ) from error
    for other in local_server.running(state):
        if (
            other.http_port != http_port
            and other.model_name == name
            and not serves(other, model_name, str(model_version), model_sha256)
        ):
            served = _version_parameter(local_server.health(other)).get("model_version", "?")
            local_server.stop(other.http_port, state)
            print(
                f"stopped the server of {model_name} v{served} on port {other.http_port}: v{model_version} now "
                f"serves on port {http_port}"
            )
    return server


def deployment_tags(server: LocalServer) -> dict[str, str]:
    """What the registry records on a version served locally."""
    return {"deployment.target": "local", "deployment.endpoint": server.infer_url}


def _version_parameter(metadata: dict | None) -> dict[str, str]:
    version = ((metadata or {}).get("parameters") or {}).get("model_version")
    return {"model_version": str(version)} if version not in (None, "") else {}


def _restore(previous: LocalServer | None, parameters: dict[str, str], state: Path) -> str:
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
            parameters=parameters,
            model_name=previous.model_name,
        )
    except local_server.LocalServerError as error:
        return f"the previous server of {previous.model_dir} could not be restarted either: {error}"
    return f"restored the previous server of {previous.model_dir}"
