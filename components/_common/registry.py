"""MLflow tracking and model registry access shared by every step, and the one way to reach a registered version:
``champion`` / ``verified_version`` return it with its model card and documents checked against their digests.

An empty ``tracking_uri`` means the local default: a SQLite file under the local state directory
(``$KFP_MLOPS_STATE_DIR``, else ``./local_state``), with artifacts beside it. On a cluster, pass the MLflow
server URL (credentials come from the environment, never from parameters).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from model_bundle import Bundle, ModelCard

STATE_DIR_ENV = "KFP_MLOPS_STATE_DIR"
CHAMPION = "champion"
CHALLENGER = "challenger"
# Version tags register_model writes and every reader checks: the sha256 of model.joblib and of schema.json as
# registered, and of model.json itself (the card records the digests of the model and the documents; this one
# anchors the card).
MODEL_SHA256_TAG = "model_sha256"
SCHEMA_SHA256_TAG = "schema_sha256"
CARD_SHA256_TAG = "card_sha256"
# The gate's verdict register_model records on every version ("true" / "false"), and the URI of the gate's reasons
# among the artifacts of the version's MLflow run (the promotion history points there).
GATE_APPROVED_TAG = "gate.approved"
GATE_REASONS_TAG = "gate.reasons_uri"
# MLflow's error codes for a model, version or alias that does not exist (they differ by store and version).
NOT_FOUND_ERRORS = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND")
# The longest model name every store takes: MLflow's SQL registry holds 256 characters (String(256); SQLite does not
# enforce it), and the local store makes the name a directory of its artifacts, at most 255 bytes on Linux and macOS.
MAX_MODEL_NAME_BYTES = 255
# Where mlflow.set_tracking_uri / set_registry_uri export the URIs (inherited by every later subprocess).
MLFLOW_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def local_state_dir() -> Path:
    return Path(os.environ.get(STATE_DIR_ENV, "local_state")).resolve()


def local_store(state_dir: str | Path | None = None) -> Path:
    """The local SQLite registry file of ``state_dir`` (default: the local state directory)."""
    return (Path(state_dir).resolve() if state_dir is not None else local_state_dir()) / "mlflow.db"


def local_tracking_uri(state_dir: str | Path | None = None) -> str:
    """The tracking URI of the local registry of ``state_dir`` (default: the local state directory)."""
    return f"sqlite:///{local_store(state_dir)}"


def registry_location(tracking_uri: str) -> str:
    """The URI ``tracking_uri`` stands for (the local SQLite store when empty), without creating anything."""
    return tracking_uri or local_tracking_uri()


def resolve_tracking_uri(tracking_uri: str) -> str:
    if not tracking_uri:
        local_state_dir().mkdir(parents=True, exist_ok=True)
    return registry_location(tracking_uri)


def connect(tracking_uri: str):
    """An MlflowClient on the resolved tracking URI (also used as the registry URI)."""
    import mlflow
    from mlflow import MlflowClient

    uri = resolve_tracking_uri(tracking_uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@contextlib.contextmanager
def mlflow_uris_restored() -> Iterator[None]:
    """MLflow's process-wide tracking and registry URIs (and the variables it exports them in) put back after the
    block: ``connect`` sets them for the steps, and in a long-lived process (a test session, a local run, a
    rehearsal) they would otherwise point at a state directory the run has left. MLflow is not imported here."""
    modules = ("mlflow.tracking._tracking_service.utils", "mlflow.tracking._model_registry.utils")
    # Read without importing MLflow (seconds): a module not imported yet holds no URI.
    tracking, registry = (sys.modules.get(name) for name in modules)
    saved_tracking = getattr(tracking, "_tracking_uri", None)
    saved_registry = getattr(registry, "_registry_uri", None)
    saved_variables = {name: os.environ.get(name) for name in MLFLOW_URI_VARIABLES}
    try:
        yield
    finally:
        tracking, registry = (sys.modules.get(name) for name in modules)
        if tracking is not None and tracking._tracking_uri != saved_tracking:
            tracking.set_tracking_uri(saved_tracking)  # also resets the tracer, which keeps the URI it exported to
        if registry is not None:
            registry._registry_uri = saved_registry
        for name, value in saved_variables.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def check_model_name(model_name: str) -> str:
    """``model_name`` if the registry can take it (MLflow's own rule: not empty, no ``/`` or ``:``, a plain path;
    at most MAX_MODEL_NAME_BYTES long in UTF-8) and a search can name it (not both quote characters); else
    ValueError naming the parameter, before any run is logged."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.validation import _validate_model_name  # private, but MLflow has no public check of a name

    try:
        _validate_model_name(model_name)
    except MlflowException as error:
        raise ValueError(f"parameter model_name {model_name!r} is no registered model name: {error.message}") from None
    size = len(model_name.encode())
    if size > MAX_MODEL_NAME_BYTES:
        raise ValueError(
            f"parameter model_name {model_name[:40]!r}... is {len(model_name)} characters ({size} bytes in UTF-8) "
            f"long; the registry takes at most {MAX_MODEL_NAME_BYTES} bytes: use a shorter name"
        )
    if "'" in model_name and '"' in model_name:
        raise ValueError(f"parameter model_name {model_name!r} holds both quote characters; use at most one kind")
    return model_name


def quoted(value: str) -> str:
    """``value`` as a string literal of an MLflow search filter (a name may hold one kind of quote)."""
    return f'"{value}"' if "'" in value else f"'{value}'"


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
        if error.error_code in NOT_FOUND_ERRORS:
            return None
        raise


@dataclass(frozen=True)
class VerifiedVersion:
    """A registered version whose model card and JSON documents have been read and checked: the card against the
    digests the registry recorded (tags ``model_sha256``, ``schema_sha256`` and, for versions registered since it
    was introduced, ``card_sha256``: model.json itself), each document against the card.

    The model file is neither downloaded nor unpickled until ``download`` or ``load_bundle``.
    """

    model_name: str
    version: str  # the registered version number, as MLflow gives it
    source: str  # the version's artifact URI (what deploy serves, "model_uri")
    tags: dict[str, str]  # the registry's version tags (model_sha256, ...)
    card: ModelCard  # model.json, parsed
    documents: dict[str, dict]  # every JSON document the card lists, each checked against the card's sha256
    description: str  # e.g. "houses version 3 (the champion)": what error messages cite

    def document(self, file_name: str) -> dict | None:
        """A document the card lists (``schema.json``, ``reference_profile.json``), or None if it lists none."""
        return self.documents.get(file_name)

    def download(self, directory: str | Path) -> Path:
        """Downloads the bundle's files (model, card, documents) into ``directory``; returns it.

        Raises BundleError naming the file when one cannot be fetched, or the card is no longer the one verified.
        Nothing is unpickled: ``model_bundle.load`` (or a model server) checks the model file against its digest.
        """
        from model_bundle import CARD_FILE, MODEL_FILE, BundleError, read_card

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name in (CARD_FILE, MODEL_FILE, *self.card.documents):
            _download_file(self.source, name, directory)
        if read_card(directory) != self.card:
            raise BundleError(
                f"{self.description}: its {CARD_FILE} in {self.source} changed since it was verified; "
                "refusing to use it"
            )
        return directory

    def load_bundle(self, directory: str | Path) -> Bundle:
        """Downloads the bundle into ``directory`` and loads it, the model file checked against the registry's
        ``model_sha256`` tag and its card before it is unpickled; raises BundleError naming the file (as
        ``model_bundle.load`` does, with its path in ``directory``)."""
        from model_bundle import load

        return load(self.download(directory), expected_sha256=self.tags.get(MODEL_SHA256_TAG) or None)


def champion(tracking_uri: str, model_name: str) -> VerifiedVersion | None:
    """``model_name``'s champion, verified (see VerifiedVersion); the alias is resolved once.

    None when there is no local registry yet (it is not created), no such model, or no champion (cold start).
    Raises model_bundle.BundleError naming the file and both digests when the card or a document fails its check
    (BundleFormatError for a card of another format version).
    """
    if not tracking_uri and not local_store().exists():
        return None  # no local registry yet: reading must not create one (nor pay for importing MLflow)
    found = version_by_alias(connect(tracking_uri), model_name, CHAMPION)
    if found is None:
        return None
    return _verify(found, model_name, f"{model_name} version {found.version} (the {CHAMPION})")


def verified_version(tracking_uri: str, model_name: str, version: str, description: str = "") -> VerifiedVersion:
    """Version ``version`` of ``model_name``, verified as ``champion`` verifies; ``description`` names it in errors
    (default "<model_name> version <version>"). Raises ValueError naming an unknown model or version."""
    from mlflow.exceptions import MlflowException

    try:
        found = connect(tracking_uri).get_model_version(model_name, str(version))
    except MlflowException as error:
        if error.error_code in NOT_FOUND_ERRORS:
            raise ValueError(f"the registry has no version {version!r} of model {model_name!r}: {error}") from error
        raise
    return _verify(found, model_name, description or f"{model_name} version {found.version}")


def _verify(model_version, model_name: str, description: str) -> VerifiedVersion:
    """Reads the version's card and documents (not its model file) and checks them; see VerifiedVersion."""
    from model_bundle import (
        CARD_FILE,
        SCHEMA_FILE,
        BundleError,
        BundleFormatError,
        check_document_name,
        read_card,
        read_documents,
    )

    source, tags = model_version.source, dict(model_version.tags or {})
    with tempfile.TemporaryDirectory() as workdir:
        try:
            _download_file(source, CARD_FILE, workdir)
            try:
                card = read_card(workdir)
            except BundleFormatError:
                # A card of another format is an older release's only if the registry's digest says it is intact:
                # an edited format_version is tampering, not a model to judge incompatible.
                _check_card_digest(Path(workdir) / CARD_FILE, tags.get(CARD_SHA256_TAG))
                raise
            # The registry recorded these digests when the version was registered: a card edited since fails here.
            for tag, listed in (
                (MODEL_SHA256_TAG, card.sha256),
                (SCHEMA_SHA256_TAG, card.documents.get(SCHEMA_FILE, "")),
            ):
                recorded = tags.get(tag)
                if recorded and listed != recorded:
                    raise BundleError(
                        f"sha256 digest mismatch for {Path(workdir) / CARD_FILE}: it records {listed or 'nothing'} "
                        f"where the registry's tag {tag} records {recorded}; refusing to use it"
                    )
            for name in card.documents:
                check_document_name(name)  # before it becomes part of a URI
                _download_file(source, name, workdir)
            documents = read_documents(workdir, card)
            # Last, so an edit the checks above catch is named by them: what remains is a document rewritten
            # together with its digest in the card (e.g. reference_profile.json, which only the card records).
            # Versions registered before this tag existed have none: the checks above are all they get.
            _check_card_digest(Path(workdir) / CARD_FILE, tags.get(CARD_SHA256_TAG))
        except BundleError as error:
            # Named as in the registry: the temporary directory means nothing to whoever reads the message.
            raise type(error)(f"{description}: {str(error).replace(workdir, source)}") from error
    return VerifiedVersion(
        model_name=model_name,
        version=str(model_version.version),
        source=source,
        tags=tags,
        card=card,
        documents=documents,
        description=description,
    )


def _check_card_digest(card_path: Path, recorded: str | None) -> None:
    """Refuses ``card_path`` when the registry recorded another sha256 for it; nothing to check when it recorded
    none."""
    from model_bundle import BundleError, file_sha256

    actual = file_sha256(card_path)
    if recorded and actual != recorded:
        raise BundleError(
            f"sha256 digest mismatch for {card_path}: found {actual} where the registry's tag {CARD_SHA256_TAG} "
            f"records {recorded}; refusing to use it"
        )


def _download_file(source: str, name: str, directory: str | Path) -> Path:
    """File ``name`` of the version directory ``source``, downloaded into ``directory``; BundleError naming it when
    it cannot be."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from model_bundle import BundleError

    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=f"{source}/{name}", dst_path=str(directory)))
    except (MlflowException, OSError) as error:
        raise BundleError(f"cannot download {name} from {source}: {error}") from error
