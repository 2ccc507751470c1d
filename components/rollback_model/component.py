"""The rollback_model KFP component: its parameters and outputs; what it decides is in logic.py (``rollback``)."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Model, Output

from components._image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def rollback_model(
    model_name: str,
    deploy_target: str,
    model: Output[Model],
    smoke_rows: Output[Dataset],
    to_version: str = "",
    reason: str = "",
    force: bool = False,
    tracking_uri: str = "",
    serving_platform: str = "seldon",
) -> NamedTuple("Outputs", [("model_version", str), ("model_uri", str), ("recorded_reason", str), ("forced", bool)]):
    """Verifies a registered version and stages it for deploy_model to serve again: the rollback pipeline's first step.

    The version is `to_version`, or, when it is empty, the champion the current one replaced when it was promoted
    (read from the model's promotion history). Rollbacks are not counted: a second rollback steps further back
    (v3 to v2, then v2 to v1), and a version a rollback took out of service is served again only when named. Its
    model card and documents are checked against the digests the registry recorded, then its model file as it is
    downloaded and loaded; its data contract (schema.json) is compared with the current champion's, the one
    requests are made for. Refused, naming the problem: an unknown model or version, no champion before the
    current one in the history, the version already being the champion, a file failing its digest (never served,
    even with `force`), a data contract incompatible with the champion's (another target or task, features missing
    or added, a feature's type changed) unless `force` is true, and `deploy_target` `none` (a rollback must serve).
    With `deploy_target` `kubernetes`, a version the cluster's storage initializer could never fetch (a registry
    inside the step's pod) is refused before anything is staged, as deploy_model refuses it.

    Args:
        model_name: Registered model name.
        deploy_target: Where deploy_model serves the version: `kubernetes` or `local`.
        model: The version's files, downloaded from the registry and verified.
        smoke_rows: The version's model-card input example (Parquet): the rows deploy_model's smoke test sends.
        to_version: The registered version to serve again; empty means the champion the current one replaced
            (rollbacks not counted).
        reason: Why the rollback is made: recorded in the promotion history.
        force: Roll back even to a version whose data contract differs from the champion's (recorded in the
            history); a file failing its digest is refused all the same.
        tracking_uri: MLflow tracking/registry URI; empty means the local SQLite store.
        serving_platform: The control plane deploy_model deploys to with target `kubernetes`: `seldon` or `kserve`
            (checked here first, and naming its storage initializer when the version's files cannot reach it).

    Returns:
        model_version: The version rolled back to.
        model_uri: Where its files are stored (the SeldonDeployment's modelUri, the InferenceService's
            STORAGE_URI).
        recorded_reason: The reason deploy_model records in the history: `reason`, plus what `force` overrode.
        forced: Whether `force` overrode an incompatible data contract.
    """
    from components.rollback_model.logic import rollback

    staged = rollback(
        model_name,
        model.path,
        smoke_rows.path,
        to_version=to_version,
        reason=reason,
        force=force,
        tracking_uri=tracking_uri,
        deploy_target=deploy_target,
        serving_platform=serving_platform,
    )
    model.metadata.update({"model_name": model_name, "model_version": staged.version, "sha256": staged.sha256})
    smoke_rows.metadata.update(staged.smoke_rows)
    was = f"v{staged.champion}" if staged.champion else "no champion"
    print(
        f"rolling {model_name} back from {was} to v{staged.version} ({staged.source}); reason: {staged.reason or '-'}"
    )
    return (staged.version, staged.source, staged.reason, staged.forced)
