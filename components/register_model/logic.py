"""Records a pipeline run's model in MLflow: one tracking run with its parameters, scores, reports and lineage, and a
registry version that MLflow itself can load, with the alias ``challenger`` moved to the newest version (the move
recorded in the promotion history, components/_common/history.py).

Every challenger is registered, approved or not, so the registry shows every candidate and why it was or was
not promoted. Only a successful deployment moves ``champion``. The version's directory is the model bundle (what
the model server loads, digest-checked) plus the MLflow sklearn flavour (``MLmodel``), so
``mlflow.pyfunc.load_model("models:/NAME@champion")`` works too. Registering is idempotent per pipeline run: a
retried step finds the version it already created.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from components._common import history, registry
from components._common.scoring import CLASSIFICATION, PRIMARY_METRIC
from model_bundle import CARD_FILE, SCHEMA_FILE, ModelCard, file_sha256, load

GIT_SHA_ENV = "KFP_MLOPS_GIT_SHA"  # set in the components image at build time
MODEL_ARTIFACT = "model"
REPORTS_ARTIFACT = "reports"
GATE_REPORT = "gate.md"  # the gate's reasons among the reports: its URI is recorded as tag registry.GATE_REASONS_TAG
STEP = "register_model"  # what moved the alias, outside a pipeline run
REGISTRATION_REASON = "newest registered version"
TEXT_LIMIT = 5000  # MLflow's limit on tag values and descriptions
# MLflow's SQL tracking stores hold a run name in 250 characters (runs.name, String(250)): PostgreSQL and MySQL refuse
# a longer one (SQLite does not enforce it), and a model name may be 255 bytes long.
RUN_NAME_LIMIT = 250
ALIAS_ATTEMPTS = 20


@dataclass(frozen=True)
class RegisteredVersion:
    """What ``register`` created: the version number, its artifact URI (``source``, as MLflow names it: what the
    server downloads) and the MLflow run holding its parameters, scores and reports."""

    model_name: str
    version: str
    source: str
    run_id: str


def git_sha() -> str:
    """The commit of the running code: baked into the image at build time, else asked of git in a checkout."""
    if os.environ.get(GIT_SHA_ENV):
        return os.environ[GIT_SHA_ENV]
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return completed.stdout.strip()


def register(
    tracking_uri: str,
    model_name: str,
    model_dir: str | Path,
    scores: Mapping[str, float],
    approved: bool,
    decision: str,
    pipeline_job_id: str = "",
    reports: Mapping[str, str | Path | None] | None = None,
    source_uri: str = "",
    images: Mapping[str, str] | None = None,
    pipeline_job_name: str = "",
) -> RegisteredVersion:
    """Logs the run and registers ``model_dir`` as a new version of ``model_name`` with the alias ``challenger``.

    ``reports`` are files (by artifact name) logged under ``reports/``, None for a report the run did not make;
    ``source_uri`` where the training data came from, logged as parameter ``source_uri``; ``images`` the container
    images by role (empty: not known), recorded as tags ``image.<role>``. The model card's data hash becomes the
    tag ``data_content_sha256`` of the run and the version; the digests of the model, the schema and the card itself
    the tags ``model_sha256``, ``schema_sha256`` and ``card_sha256``, against which ``registry`` verifies them; the
    URI of the gate's report (``gate.md`` among ``reports``) the tag ``gate.reasons_uri``. Moving ``challenger`` is
    recorded in the promotion history (cause "registration", moved by the KFP run ``pipeline_job_name`` /
    ``pipeline_job_id``).
    """
    from mlflow.entities import Metric, Param
    from mlflow.exceptions import MlflowException

    registry.check_model_name(model_name)
    bundle = load(model_dir)  # verifies the files against their digests before anything is recorded
    card = bundle.card
    reports = {name: path for name, path in (reports or {}).items() if path is not None}
    client = registry.connect(tracking_uri)
    mover = history.moved_by(pipeline_job_name, pipeline_job_id, STEP)
    tags = {
        registry.MODEL_SHA256_TAG: card.sha256,
        "data_content_sha256": card.data_content_sha256,
        # The data contract travels in the model directory; its digest names the schema version.
        registry.SCHEMA_SHA256_TAG: card.documents.get(SCHEMA_FILE, ""),
        # The card itself, as registered: it records the other documents' digests (the reference profile's only
        # there), so registry.champion refuses a document rewritten together with its digest in the card.
        registry.CARD_SHA256_TAG: file_sha256(Path(model_dir) / CARD_FILE),
        "git_sha": git_sha(),
        registry.GATE_APPROVED_TAG: str(approved).lower(),
        "gate.decision": decision[:TEXT_LIMIT],
        "kfp.pipeline_job_id": pipeline_job_id,
        **{f"image.{role}": image for role, image in (images or {}).items() if image},
    }
    if pipeline_job_id:
        previous = client.search_model_versions(
            f"name={registry.quoted(model_name)} and tag.`kfp.pipeline_job_id`='{pipeline_job_id}' "
            f"and tag.model_sha256='{card.sha256}'"
        )
        if previous:
            found = previous[0]
            # An attempt that registered the version may have stopped before moving the alias.
            point_alias_at_newest(client, model_name, registry.CHALLENGER, moved_by=mover)
            return RegisteredVersion(model_name, str(found.version), found.source, found.run_id)

    run = client.create_run(
        registry.experiment_id(client, model_name),
        run_name=run_name(model_name, pipeline_job_id or card.sha256[:8]),
        tags={**tags, "mlflow.note.content": decision[:TEXT_LIMIT]},
    )
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    metrics = {f"test_{name}": value for name, value in scores.items()}
    for prefix, card_scores in (("training", card.training_scores), ("validation", card.validation_scores)):
        metrics.update({f"{prefix}_{name}": value for name, value in (card_scores or {}).items()})
    params = {
        "target": card.target,
        "task": card.task,
        "model_type": card.model_type,
        "estimator": card.estimator,
        "hyperparameters": json.dumps(card.hyperparameters, sort_keys=True),
        "seed": "" if card.seed is None else card.seed,
        "training_rows": card.training_rows,
        "features": ",".join(card.feature_names),
        "excluded_columns": json.dumps(card.excluded_columns, sort_keys=True),
        "validation_fraction": card.validation_fraction,
        "source_uri": source_uri,
    }
    client.log_batch(
        run_id,
        metrics=[Metric(name, float(value), now, 0) for name, value in metrics.items()],
        params=[Param(name, _param_text(value)) for name, value in params.items()],
    )
    with tempfile.TemporaryDirectory() as staging:
        logged = Path(staging) / MODEL_ARTIFACT
        shutil.copytree(model_dir, logged)
        add_sklearn_flavour(bundle, logged)
        client.log_artifacts(run_id, str(logged), artifact_path=MODEL_ARTIFACT)
        for name, path in reports.items():
            copy = Path(staging) / REPORTS_ARTIFACT / name
            copy.parent.mkdir(exist_ok=True)
            shutil.copyfile(path, copy)
        if reports:
            client.log_artifacts(run_id, str(Path(staging) / REPORTS_ARTIFACT), artifact_path=REPORTS_ARTIFACT)
    client.set_terminated(run_id)

    try:
        client.create_registered_model(model_name, description=f"Predicts {card.target} ({card.task}).")
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    if GATE_REPORT in reports:
        # Where a person (and the promotion history) finds the gate's reasons in full: the tag keeps only 5000
        # characters.
        tags[registry.GATE_REASONS_TAG] = f"{run.info.artifact_uri}/{REPORTS_ARTIFACT}/{GATE_REPORT}"
    version = client.create_model_version(
        model_name,
        source=f"{run.info.artifact_uri}/{MODEL_ARTIFACT}",
        run_id=run_id,
        tags=tags,
        description=describe(card, scores, approved, decision),
    )
    point_alias_at_newest(client, model_name, registry.CHALLENGER, moved_by=mover)
    return RegisteredVersion(model_name, str(version.version), version.source, run_id)


def run_name(model_name: str, run_key: str) -> str:
    """``<model_name>-<run_key>``, the name of the MLflow run registering a version; when that is longer than
    RUN_NAME_LIMIT, the model name is cut and followed by 8 hex digits of its sha256, so two long names alike in their
    first characters still name their runs apart, and ``run_key`` (the pipeline run) stays whole."""
    name = f"{model_name}-{run_key}"
    if len(name) <= RUN_NAME_LIMIT:
        return name
    tail = f"-{hashlib.sha256(model_name.encode()).hexdigest()[:8]}-{run_key}"
    return (model_name[: max(0, RUN_NAME_LIMIT - len(tail))] + tail)[:RUN_NAME_LIMIT]


def point_alias_at_newest(client, model_name: str, alias: str, moved_by: str = STEP) -> None:
    """Moves ``alias`` to the newest version of ``model_name``, until the registry agrees; each move is recorded in
    the promotion history (cause "registration", by ``moved_by``, with the version's gate verdict and digest).

    Two registrations at the same time may each set the alias to the version they created, the older one last;
    checking again after setting makes the alias end on the newest version whichever order they ran in.
    """
    for _ in range(ALIAS_ATTEMPTS):
        newest = max(
            int(found.version) for found in client.search_model_versions(f"name={registry.quoted(model_name)}")
        )
        current = registry.version_by_alias(client, model_name, alias)
        if current is not None and int(current.version) >= newest:
            return
        history.move_alias(
            client,
            model_name,
            alias,
            str(newest),
            cause="registration",
            moved_by=moved_by,
            reason=REGISTRATION_REASON,
            **history.version_facts(client, model_name, str(newest)),
        )
    raise RuntimeError(
        f"alias {alias!r} of {model_name} kept moving: more than {ALIAS_ATTEMPTS} registrations at once?"
    )


def add_sklearn_flavour(bundle, directory: Path) -> None:
    """Adds MLflow's sklearn flavour (``MLmodel``, the pickled model, environment files) beside the bundle.

    The flavour's model is the bundle's own Pipeline, which types its raw input itself, so MLflow users get the
    served predictions from raw columns with nothing but the pinned libraries. The signature names the raw feature
    columns, every one required, of any type: MLflow's type rules are stricter than the model's typing (integers
    refused for a double).
    """
    import mlflow.sklearn
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema
    from mlflow.types.schema import AnyType

    versions = bundle.card.library_versions
    inputs = Schema([ColSpec(AnyType(), feature["name"]) for feature in bundle.features])
    output = Schema([ColSpec("string" if bundle.task == CLASSIFICATION else "double")])
    with tempfile.TemporaryDirectory() as workdir:
        flavour = Path(workdir) / "flavour"
        with warnings.catch_warnings():
            # MLflow warns that pickles run code when loaded; so does model.joblib, whose digest is checked.
            warnings.filterwarnings("ignore", message="Saving scikit-learn models in the pickle")
            mlflow.sklearn.save_model(
                bundle.model,
                flavour,
                serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_PICKLE,
                signature=ModelSignature(inputs=inputs, outputs=output),
                pip_requirements=[
                    f"{name}=={versions[name]}" for name in ("scikit-learn", "numpy", "pandas", "joblib")
                ],
            )
        for path in flavour.iterdir():
            if (directory / path.name).exists():
                raise FileExistsError(f"MLflow's {path.name} would overwrite the bundle's file of that name")
            shutil.move(str(path), directory / path.name)


def describe(card: ModelCard, scores: Mapping[str, float], approved: bool, decision: str) -> str:
    """The version's description in the registry (Markdown): what it is, how good, and the gate's verdict."""
    metric = PRIMARY_METRIC[card.task]
    summary = (
        f"{card.estimator or 'Model'} predicting `{card.target}` ({card.task}), trained on "
        f"{card.training_rows or '?'} rows; test {metric} {scores.get(metric, float('nan')):.4g}; "
        f"gate {'approved' if approved else 'rejected'}."
    )
    return f"{summary}\n\n{decision}"[:TEXT_LIMIT]


def _param_text(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text[:6000]  # MLflow's limit on a parameter value
