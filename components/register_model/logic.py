"""Records a trained model in MLflow: a tracking run with its card, scores and files, and a registry version.

Every challenger is registered, approved or not, so the registry shows every candidate and why it was or was
not promoted; the new version gets the alias ``challenger``. Only a successful deployment moves ``champion``.
Registering is idempotent per pipeline run: a retried step finds the version it already created.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from components._common import registry
from model_bundle import SCHEMA_FILE, read_card


@dataclass(frozen=True)
class RegisteredVersion:
    model_name: str
    version: str
    source: str
    run_id: str


def register(
    tracking_uri: str,
    model_name: str,
    model_dir: str | Path,
    scores: dict[str, float],
    approved: bool,
    decision: str,
    pipeline_job_id: str = "",
) -> RegisteredVersion:
    from mlflow.entities import Metric, Param
    from mlflow.exceptions import MlflowException

    if not model_name:
        raise ValueError("parameter model_name is empty")
    card = read_card(model_dir)
    client = registry.connect(tracking_uri)
    tags = {
        "model_sha256": card["sha256"],
        "data_content_sha256": card.get("data_content_sha256", ""),
        # The data contract travels in the model directory; its digest names the schema version.
        "schema_sha256": card.get("documents", {}).get(SCHEMA_FILE, ""),
        "gate.approved": str(approved).lower(),
        "gate.decision": decision[:5000],
        "kfp.pipeline_job_id": pipeline_job_id,
    }
    if pipeline_job_id:
        previous = client.search_model_versions(
            f"name='{model_name}' and tag.`kfp.pipeline_job_id`='{pipeline_job_id}' "
            f"and tag.model_sha256='{card['sha256']}'"
        )
        if previous:
            found = previous[0]
            return RegisteredVersion(model_name, str(found.version), found.source, found.run_id)

    run = client.create_run(
        registry.experiment_id(client, model_name),
        run_name=f"{model_name}-{card['sha256'][:8]}",
        tags={**tags, "mlflow.note.content": decision[:5000]},
    )
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    params = {
        "target": card["target"],
        "task": card["task"],
        "model_type": card.get("model_type", ""),
        "estimator": card.get("estimator", ""),
        "hyperparameters": json.dumps(card.get("hyperparameters", {}), sort_keys=True),
        "seed": card.get("seed", ""),
        "training_rows": card.get("training_rows", ""),
        "features": ",".join(feature["name"] for feature in card["features"]),
    }
    client.log_batch(
        run_id,
        metrics=[Metric(f"test_{name}", float(value), now, 0) for name, value in scores.items()],
        params=[Param(name, str(value)[:6000]) for name, value in params.items()],
    )
    client.log_artifacts(run_id, str(model_dir), artifact_path="model")
    client.set_terminated(run_id)

    try:
        client.create_registered_model(model_name, description=f"Predicts {card['target']} ({card['task']}).")
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    version = client.create_model_version(
        model_name,
        source=f"{run.info.artifact_uri}/model",
        run_id=run_id,
        tags=tags,
        description=decision[:5000],
    )
    client.set_registered_model_alias(model_name, registry.CHALLENGER, version.version)
    return RegisteredVersion(model_name, str(version.version), version.source, run_id)
