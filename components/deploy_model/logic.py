"""The deploy step's decisions: which target, what a kubernetes deployment needs before it starts, which
registered version is served (read through the registry, verified), and when the alias ``champion`` moves.

Targets (``deploy`` is the step):
- ``kubernetes``: refuse at once a registry or model URI the cluster could never fetch (check_cluster_sources,
  check_model_files), create or replace the resource of the cluster's control plane (``serving_platform``: a
  SeldonDeployment with ``protocol: v2``, or a KServe InferenceService in Standard mode), follow the new spec's
  rollout, smoke-test it through its in-cluster service, then move ``champion``; on failure the previous spec is
  restored (or the new object deleted) and the alias is left alone. One sequence for both kinds (the mechanism:
  cluster.py, reading what each control plane writes from platforms.py).
- ``local``: serve the registered version's files on this machine with this project's model server
  (``python -m serving``, run by the step's own Python environment, as the image runs it), smoke-test it, then move
  ``champion``; on failure the previous local server is restored and the alias is left alone (the mechanism:
  local.py). ``serve_champion_locally`` serves the current champion the same way when a run deployed nothing
  (run_local).
- ``none``: only render the resource a cluster running ``serving_platform`` would apply.
That manifest is rendered for every target, by the same builder (manifests.build_manifest). Every smoke test
(smoke.py) first checks the digest the server reports, then that it answers test rows exactly as the model
predicts in-process. Every move of ``champion`` goes through the promotion history (history.move_alias), with what
moved it and why (``Provenance``). (About 400 lines: the decisions of the three targets are kept together, so that
the order of checks, deployment and alias move reads in one place; the mechanisms are in cluster.py and local.py.)
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import numpy as np
import pandas as pd

import model_bundle
from components._common import history, registry
from components._common.datasets import read_dataset
from components.deploy_model import local
from components.deploy_model.manifests import (
    KSERVE_SERVICE_ACCOUNT,
    RCLONE_SECRET,
    build_manifest,
    check_namespace,
    check_serving_platform,
    served_model_name,
)
from components.deploy_model.smoke import DeploymentError, smoke_test

if TYPE_CHECKING:
    from serving.local_server import LocalServer

TARGETS = ("kubernetes", "local", "none")
SMOKE_ROWS = 5
# URIs that only mean something inside one pod (or to an MLflow client): nothing in the cluster can read them.
POD_LOCAL_TRACKING_SCHEMES = ("", "file", "sqlite")
REMOTE_BARE_TRACKING_URIS = ("databricks", "databricks-uc")  # MLflow's names for a hosted registry, not paths
UNFETCHABLE_MODEL_SCHEMES = ("", "file", "models", "runs", "mlflow-artifacts")
STEP = "deploy_model"  # what moved the alias, outside a pipeline run
APPROVED_REASON = "passed the gate"  # the reason recorded for an approved version when none is given
# The step's pod is stopped after 3600 s (its activeDeadlineSeconds, pipelines/_kubernetes.py), and a step stopped
# while it waits cannot roll back: the new spec would stay live, untested. The wait ends 600 s before, leaving time
# for the checks before it and the rollback after it.
MAX_WAIT_SECONDS = 3000


@dataclass(frozen=True)
class Provenance:
    """What deploys the version and why, recorded in the promotion history when ``champion`` moves."""

    pipeline_job_name: str = ""  # the KFP run's name: the pipeline it belongs to gives the move's cause
    pipeline_job_id: str = ""
    reason: str = ""  # free text; empty: APPROVED_REASON for a version the gate approved (but for a rollback)
    forced: bool = False  # a refusal overridden with force=true (rollback)


def check_target(deploy_target: str) -> str:
    if deploy_target not in TARGETS:
        raise DeploymentError(f"parameter deploy_target must be one of {TARGETS}, got {deploy_target!r}")
    return deploy_target


def check_wait_timeout(wait_timeout_seconds: float) -> float:
    """Refuses a ``kubernetes`` wait the step's pod would not outlive (or no wait at all)."""
    if not 0 < wait_timeout_seconds <= MAX_WAIT_SECONDS:
        raise DeploymentError(
            f"parameter wait_timeout_seconds must be more than 0 and at most {MAX_WAIT_SECONDS}, got "
            f"{wait_timeout_seconds!r}: the deploy step's pod is stopped after 3600 s, and a step stopped while it "
            "waits cannot roll the deployment back"
        )
    return wait_timeout_seconds


# What fetches a version's files into the model's pod, and where its credentials come from, per serving_platform.
STORAGE_INITIALIZERS = {
    "seldon": (
        "Seldon's rclone storage initializer",
        f"with a remote of that scheme in the {RCLONE_SECRET} Secret",
    ),
    "kserve": (
        "KServe's storage initializer",
        f"with its credentials in the Secret the ServiceAccount {KSERVE_SERVICE_ACCOUNT} lists",
    ),
}


def check_cluster_sources(tracking_uri: str, model_uri: str, serving_platform: str = "seldon") -> None:
    """Refuses, before anything is deployed, a ``kubernetes`` deployment that could never start.

    An empty or file-based ``tracking_uri`` is a registry inside the step's own pod: the version was registered
    there, its files sit on that pod's disk, and the storage initializer of ``serving_platform`` (Seldon's
    ``rclone copy <modelUri>``, KServe's download of ``STORAGE_URI``) can never fetch them; without this check the
    step would fail only after the whole wait, then roll back.
    """
    initializer, credentials = STORAGE_INITIALIZERS[check_serving_platform(serving_platform)]
    server = "an MLflow server the cluster reaches, e.g. http://mlflow.kubeflow.svc.cluster.local:5000"
    if not tracking_uri.strip():
        raise DeploymentError(
            "parameter tracking_uri is empty: with deploy_target=kubernetes it must be "
            f"{server} (empty means a SQLite registry inside this step's own pod)"
        )
    if _scheme(tracking_uri) in POD_LOCAL_TRACKING_SCHEMES and tracking_uri.strip() not in REMOTE_BARE_TRACKING_URIS:
        raise DeploymentError(
            f"parameter tracking_uri {tracking_uri!r} is a file inside this step's own pod: with "
            f"deploy_target=kubernetes it must be {server}"
        )
    if _scheme(model_uri) in UNFETCHABLE_MODEL_SCHEMES:
        raise DeploymentError(
            f"parameter model_uri {model_uri!r} cannot be fetched by {initializer}: deploy_target=kubernetes needs "
            "the version's files in object storage (e.g. s3://mlpipeline/...), i.e. an MLflow server whose artifact "
            f"root is a bucket, {credentials}"
        )


def check_model_files(model_uri: str) -> None:
    """Refuses, before anything is deployed, a ``model_uri`` that does not hold the model's files.

    Seldon's storage initializer (``rclone copy``) of a location holding nothing succeeds ("nothing to transfer"),
    KServe's as soon as the location holds any file, so on the cluster the model server would start without its
    files and fail until the wait timed out. Listed with the step's own object-store credentials (MLflow's
    artifact repositories)."""
    import mlflow

    required = (model_bundle.MODEL_FILE, model_bundle.CARD_FILE)
    try:
        found = {Path(info.path).name for info in mlflow.artifacts.list_artifacts(artifact_uri=model_uri)}
    except Exception as error:  # each store raises its own errors (botocore, google.api_core, OSError)
        raise DeploymentError(f"cannot list parameter model_uri {model_uri!r}: {error}") from error
    missing = [name for name in required if name not in found]
    if missing:
        raise DeploymentError(
            f"parameter model_uri {model_uri!r} holds no {' or '.join(missing)} (found: {sorted(found) or 'nothing'}):"
            " the storage initializer would copy nothing the model server can load"
        )


def _scheme(uri: str) -> str:
    """The URI's scheme, "" for a bare path (a one-letter scheme is a Windows drive)."""
    scheme = urlparse(uri.strip()).scheme.lower()
    return "" if len(scheme) <= 1 else scheme


def deploy(
    model_dir: str | Path,
    test_path: str | Path,
    model_name: str,
    model_version: str,
    model_uri: str,
    serving_image: str,
    manifest_path: str | Path,
    deploy_target: str = "none",
    serving_platform: str = "seldon",
    namespace: str = "models",
    tracking_uri: str = "",
    serving_port: int = 9000,
    metrics_port: int = 6000,
    wait_timeout_seconds: float = 600,
    pipeline_job_id: str = "",
    pipeline_job_name: str = "",
    reason: str = "",
    forced: bool = False,
    history_path: str | Path | None = None,
) -> str:
    """The deploy step: checks what ``deploy_target`` and ``serving_platform`` need, renders the resource of
    ``serving_platform`` (a SeldonDeployment or an InferenceService) to ``manifest_path``, then deploys version
    ``model_version`` (the model in ``model_dir``) to the target; returns its OIP infer URL, empty for target
    ``none``. Parameters as the component documents them; the model's promotion history after the step is written
    to ``history_path`` (when given) for every target.

    A kubernetes deployment the cluster could never fetch is refused before anything, even the manifest, is
    written. The smoke test sends the first ``SMOKE_ROWS`` rows of the dataset at ``test_path`` and expects the
    model's own predictions.
    """
    check_target(deploy_target)
    check_serving_platform(serving_platform)
    check_namespace(namespace)
    if deploy_target == "kubernetes":
        check_wait_timeout(wait_timeout_seconds)
        check_cluster_sources(tracking_uri, model_uri, serving_platform)
        check_model_files(model_uri)
    bundle = model_bundle.load(model_dir)
    sha256 = bundle.card.sha256
    manifest = build_manifest(
        serving_platform,
        model_name,
        model_version,
        model_uri,
        sha256,
        namespace,
        image=serving_image,
        pipeline_job_id=pipeline_job_id,
    )
    write_manifest(manifest, manifest_path)
    if deploy_target == "none":
        print(f"rendered the {manifest['kind']} for {model_name} v{model_version}; nothing deployed")
        endpoint = ""
    else:
        rows = read_dataset(test_path)[bundle.feature_names].head(SMOKE_ROWS)
        expected = bundle.predict(rows)
        provenance = Provenance(pipeline_job_name, pipeline_job_id, reason, forced)
        if deploy_target == "kubernetes":
            endpoint = deploy_kubernetes(
                manifest,
                model_name,
                model_version,
                sha256,
                rows,
                expected,
                tracking_uri,
                timeout=wait_timeout_seconds,
                provenance=provenance,
            )
        else:
            endpoint = deploy_local(
                model_name,
                model_version,
                sha256,
                rows,
                expected,
                tracking_uri,
                serving_port,
                metrics_port,
                provenance=provenance,
            )
        print(f"{model_name} v{model_version} is the champion, served at {endpoint}")
    if history_path is not None:
        history.write_report(history_path, tracking_uri, model_name)
    return endpoint


def deploy_local(
    model_name: str,
    model_version: str,
    model_sha256: str,
    smoke_rows: pd.DataFrame,
    expected_predictions: np.ndarray,
    tracking_uri: str = "",
    http_port: int = 9000,
    metrics_port: int = 6000,
    provenance: Provenance | None = None,
) -> str:
    """Serves the registered version locally, smoke-tests it, then makes it the champion (the move recorded with
    ``provenance``); returns its OIP infer URL.

    The files served are downloaded from the registry (as a cluster would), not taken from the pipeline's own
    artifact, once its card and documents have passed their digest checks (registry.verified_version); the server
    checks the model file against ``model_sha256``. On any failure the previously served model is restored and
    ``champion`` stays where it was.
    """
    directory = local.version_dir(model_name, model_version)
    try:
        version = registry.verified_version(tracking_uri, model_name, model_version)
        shutil.rmtree(directory, ignore_errors=True)
        version.download(directory)
    except model_bundle.BundleError as error:
        raise DeploymentError(
            f"deploying {model_name} v{model_version} failed, nothing was started: {error}"
        ) from error
    server = local.serve(
        model_name, model_version, directory, model_sha256, smoke_rows, expected_predictions, http_port, metrics_port
    )
    promote_champion(tracking_uri, model_name, model_version, model_sha256, local.deployment_tags(server), provenance)
    return server.infer_url


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

    A run whose gate keeps the champion deploys nothing, so after ``make stop`` nothing would be serving it. The
    server this tool runs on ``http_port`` (metrics on ``metrics_port``) is kept only when its OIP metadata, under
    the model's name, reports the digest the registry recorded and the champion's version. Otherwise the champion
    is served as the deploy step serves a version: read from the registry with its card and documents verified
    (registry.champion), its model file checked against the recorded digest (``model_sha256`` tag) before it is
    loaded, started in place of whatever ran on the port, smoke-tested with the input example of its model card;
    on failure the previous server is restored. The alias is not moved.
    """
    try:
        champion = registry.champion(tracking_uri, model_name)
    except model_bundle.BundleError as error:
        raise DeploymentError(f"the champion of {model_name} cannot be served: {error}") from error
    if champion is None:
        raise NoChampionError(
            f"{model_name} has no version with the alias {registry.CHAMPION!r} in the registry at "
            f"{registry.registry_location(tracking_uri)}: no version has passed the gate and been deployed yet"
        )
    version, sha256 = champion.version, champion.tags.get(registry.MODEL_SHA256_TAG)
    what = f"{model_name} v{version} (the champion)"
    if not sha256:
        raise DeploymentError(
            f"{what} has no {registry.MODEL_SHA256_TAG} tag: its files cannot be verified, so they are not served"
        )

    current = local.running_on(http_port)
    if (
        current is not None
        and current.metrics_port == metrics_port
        and local.serves(current, model_name, version, sha256)
    ):
        return LocalChampion(model_name, version, current, started=False)

    directory = local.version_dir(model_name, version)
    shutil.rmtree(directory, ignore_errors=True)
    try:
        bundle = champion.load_bundle(directory)
    except model_bundle.BundleError as error:
        raise DeploymentError(f"{what} cannot be served: {error}") from error
    rows = example_rows(bundle, f"{model_name} v{version}")
    server = local.serve(model_name, version, directory, sha256, rows, bundle.predict(rows), http_port, metrics_port)
    _tag_version(registry.connect(tracking_uri), model_name, version, local.deployment_tags(server))
    return LocalChampion(model_name, version, server, started=True)


def example_rows(bundle, what: str) -> pd.DataFrame:
    """The model card's input example (one real training row) as the smoke test's request."""
    example = bundle.card.input_example
    missing = [name for name in bundle.feature_names if name not in example]
    if missing:
        raise DeploymentError(
            f"{what}: the input_example of its model card lacks feature(s) {missing}, so it cannot be smoke-tested"
        )
    return pd.DataFrame([{name: example[name] for name in bundle.feature_names}])


def deploy_kubernetes(
    manifest: dict,
    model_name: str,
    model_version: str,
    model_sha256: str,
    smoke_rows: pd.DataFrame,
    expected_predictions: np.ndarray,
    tracking_uri: str = "",
    timeout: float = 600.0,
    api=None,
    provenance: Provenance | None = None,
) -> str:
    """Rolls ``manifest`` (a SeldonDeployment or an InferenceService serving version ``model_version`` of
    ``model_name``, digest ``model_sha256``) out to the cluster, smoke-tests it in the cluster, then makes it the
    champion (the move recorded with ``provenance``) and tags the version with where it is served.

    On any failure the cluster is rolled back and ``champion`` stays where it was. Returns the in-cluster OIP
    infer URL. (The step has already refused, with check_cluster_sources, what the cluster could never fetch.)
    """
    from components.deploy_model import cluster, platforms

    served_name = served_model_name(manifest)
    try:
        rollout = cluster.roll_out(
            api if api is not None else cluster.load_api(),
            manifest,
            lambda base_url: smoke_test(base_url, served_name, smoke_rows, expected_predictions, model_sha256),
            timeout=timeout,
        )
    except cluster.ClusterDeploymentError as error:
        raise DeploymentError(f"deploying {model_name} v{model_version} to Kubernetes failed: {error}") from error
    promote_champion(
        tracking_uri,
        model_name,
        model_version,
        model_sha256,
        {
            "deployment.target": "kubernetes",
            "deployment.platform": platforms.for_manifest(manifest).name,
            "deployment.namespace": manifest["metadata"]["namespace"],
            "deployment.name": manifest["metadata"]["name"],
            "deployment.endpoint": rollout.predictions_url,
        },
        provenance,
    )
    return rollout.predictions_url


def promote_champion(
    tracking_uri: str,
    model_name: str,
    model_version: str,
    model_sha256: str,
    tags: dict[str, str],
    provenance: Provenance | None = None,
) -> history.Move:
    """Moves the ``champion`` alias to a version that serves correctly (digest ``model_sha256``, the one served),
    records the move in the promotion history and where the version is served (version ``tags``); returns the move.

    The move's cause is the pipeline that deployed it ("training", "monitoring", "rollback"; else "deploy"), its
    gate verdict and reasons those register_model recorded on the version.
    """
    provenance = provenance or Provenance()
    client = registry.connect(tracking_uri)
    facts = {**history.version_facts(client, model_name, model_version), "model_sha256": model_sha256}
    cause = history.cause_from_job(provenance.pipeline_job_name, "deploy")
    # A rollback passed no gate now: its reason is the one given, or none (the version's own gate verdict shows).
    approved = facts["gate"] == "approved" and cause != history.ROLLBACK
    reason = provenance.reason or (APPROVED_REASON if approved else "")
    move = history.move_alias(
        client,
        model_name,
        registry.CHAMPION,
        model_version,
        cause=cause,
        moved_by=history.moved_by(provenance.pipeline_job_name, provenance.pipeline_job_id, STEP),
        reason=reason,
        forced=provenance.forced,
        **facts,
    )
    _tag_version(client, model_name, model_version, tags)
    return move


def _tag_version(client, model_name: str, model_version: str, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        client.set_model_version_tag(model_name, model_version, key, value)


def write_manifest(manifest: dict, path: str | Path) -> None:
    import yaml

    Path(path).write_text(yaml.safe_dump(manifest, sort_keys=False))
