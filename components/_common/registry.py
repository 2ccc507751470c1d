"""MLflow tracking and model registry access shared by the gate, register and deploy steps.

An empty ``tracking_uri`` means the local default: a SQLite file under the local state directory
(``$KFP_MLOPS_STATE_DIR``, else ``./local_state``), with artifacts beside it. On a cluster, pass the MLflow
server URL (credentials come from the environment, never from parameters).
"""

from __future__ import annotations

import os
from pathlib import Path

STATE_DIR_ENV = "KFP_MLOPS_STATE_DIR"
CHAMPION = "champion"
CHALLENGER = "challenger"


def local_state_dir() -> Path:
    return Path(os.environ.get(STATE_DIR_ENV, "local_state")).resolve()


def local_store() -> Path:
    return local_state_dir() / "mlflow.db"


def resolve_tracking_uri(tracking_uri: str) -> str:
    if tracking_uri:
        return tracking_uri
    local_state_dir().mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{local_store()}"


def connect(tracking_uri: str):
    """An MlflowClient on the resolved tracking URI (also used as the registry URI)."""
    import mlflow
    from mlflow import MlflowClient

    uri = resolve_tracking_uri(tracking_uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def experiment_id(client, name: str) -> str:
    """The id of experiment ``name``, created if missing (artifacts under the state dir for a local SQLite store)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    artifact_location = None
    if client.tracking_uri.startswith("sqlite:"):
        # Without this MLflow would put artifacts in ./mlruns of whatever directory the step runs in.
        artifact_location = (local_state_dir() / "mlartifacts" / name).as_uri()
    from mlflow.exceptions import MlflowException

    try:
        return client.create_experiment(name, artifact_location=artifact_location)
    except MlflowException:
        # Another run created it between our lookup and create.
        return client.get_experiment_by_name(name).experiment_id


def version_by_alias(client, model_name: str, alias: str):
    """The registered version carrying ``alias``, or None when the model or the alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def download_version(model_version, destination: str | Path) -> Path:
    """Downloads a registered version's model directory into ``destination``; returns the local directory."""
    import mlflow

    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=model_version.source, dst_path=str(destination)))


def champion_document(tracking_uri: str, model_name: str, file_name: str) -> tuple[dict | None, str]:
    """A JSON document registered with ``model_name``'s champion (``schema.json``, ``reference_profile.json``),
    and what it is.

    ``(None, "")`` when there is no champion yet (cold start) or the champion was registered without that file.
    """
    if not tracking_uri and not local_store().exists():
        return None, ""  # no local registry yet: reading must not create one (nor pay for importing MLflow)
    import json
    import tempfile

    import mlflow
    from mlflow.exceptions import MlflowException

    champion = version_by_alias(connect(tracking_uri), model_name, CHAMPION)
    if champion is None:
        return None, ""
    with tempfile.TemporaryDirectory() as workdir:
        try:
            path = mlflow.artifacts.download_artifacts(artifact_uri=f"{champion.source}/{file_name}", dst_path=workdir)
        except (MlflowException, OSError):
            return None, ""
        document = json.loads(Path(path).read_text())
    return document, f"the {file_name} of {model_name} version {champion.version} (the champion)"
