"""Rollback model: which version to roll back to, and whether it may be served again (plain Python, no kfp).

``rollback`` is the step. It resolves the version (``to_version``, or the champion before the current one in the
promotion history), re-verifies it the one way every step reaches a registered version (registry.verified_version:
card and documents against the registry's digests, then the model file against ``model_sha256`` as it is loaded),
and compares its data contract with the one the current champion serves. Each refusal names the problem; only an
incompatible contract can be overridden (``force``), and the override is recorded in the reason the deploy step
writes to the history. A file that fails its digest is never served, forced or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

import model_bundle
from components._common import history, registry
from components._common.datasets import write_dataset
from components._common.registry import VerifiedVersion

# deploy_model's own target check refuses unknown targets; a rollback also refuses the one that serves nothing.
RENDER_ONLY_TARGET = "none"


class RollbackError(ValueError):
    """The rollback is refused; the message names the model, the version and the problem."""


@dataclass(frozen=True)
class Rollback:
    """A version verified and staged to be served again, and what the deploy step records about it."""

    model_name: str
    version: str  # the version rolled back to
    source: str  # its artifact URI (the deploy step's model_uri)
    sha256: str  # its model file's digest: what the server must report
    champion: str | None  # the version that was the champion when the rollback was decided
    reason: str  # the text the history records: the user's reason, plus what force overrode
    forced: bool  # an incompatible data contract was overridden with force=true
    smoke_rows: dict  # the smoke rows' dataset metadata (rows, columns, content hash), as write_dataset returns it


def rollback(
    model_name: str,
    model_dir: str | Path,
    smoke_rows_path: str | Path,
    to_version: str = "",
    reason: str = "",
    force: bool = False,
    tracking_uri: str = "",
    deploy_target: str = "kubernetes",
    serving_platform: str = "seldon",
) -> Rollback:
    """The step: resolves, verifies and stages the version to roll ``model_name`` back to.

    Writes the version's bundle into ``model_dir`` (every digest checked, the model file loaded) and its model
    card's input example, the rows the deploy step's smoke test sends, as a dataset at ``smoke_rows_path``.
    Raises RollbackError (or the registry's ValueError for an unknown model or version) naming the problem.
    """
    from components.deploy_model.logic import check_cluster_sources, check_serving_platform, check_target, example_rows

    check_target(deploy_target)
    check_serving_platform(serving_platform)
    if deploy_target == RENDER_ONLY_TARGET:
        raise RollbackError(
            f"parameter deploy_target={deploy_target!r} only renders a manifest: a rollback must serve the version "
            "(use kubernetes or local)"
        )
    moves = history.read(tracking_uri, model_name)  # ValueError naming an unknown model
    current = registry.version_by_alias(registry.connect(tracking_uri), model_name, registry.CHAMPION)
    champion = None if current is None else str(current.version)
    version = resolve_version(model_name, to_version, champion, moves)

    candidate = verify(tracking_uri, model_name, version)
    if deploy_target == "kubernetes":
        # Before anything is staged, as the deploy step does (naming the storage initializer that would fetch it).
        check_cluster_sources(tracking_uri, candidate.source, serving_platform)
    try:
        bundle = candidate.load_bundle(model_dir)  # the model file against the registry's model_sha256
    except model_bundle.BundleError as error:
        raise _tampered(f"{model_name} v{version}", error) from error
    rows = example_rows(bundle, candidate.description)

    problems = contract_problems(tracking_uri, model_name, champion, candidate)
    if problems and not force:
        raise RollbackError(
            f"refusing to roll {model_name} back to v{version}: {'; '.join(problems)}. Requests made for the "
            "champion may not suit it; force=true rolls back anyway (recorded in the history)"
        )
    recorded = "; ".join(part for part in (reason.strip(), *(f"forced: {problem}" for problem in problems)) if part)
    return Rollback(
        model_name=model_name,
        version=version,
        source=candidate.source,
        sha256=bundle.card.sha256,
        champion=champion,
        reason=recorded,
        forced=bool(problems),
        smoke_rows=write_dataset(rows, smoke_rows_path),
    )


def resolve_version(model_name: str, to_version: str, champion: str | None, moves: list[history.Move]) -> str:
    """The version to roll back to: ``to_version``, or the champion ``champion`` replaced when it was promoted.

    Refuses a rollback to the champion itself, and an implicit one without a champion or without an earlier one.
    """
    version = str(to_version).strip()
    if version.isdigit():  # MLflow's versions are numbers: "01" is version 1, and must compare as it
        version = str(int(version))
    if not version:
        if champion is None:
            raise RollbackError(
                f"{model_name} has no champion: there is nothing to roll back from; name the version to serve "
                "with to_version"
            )
        version = history.previous_champion(moves, champion)
        if version is None:
            raise RollbackError(
                f"the promotion history of {model_name} records no champion before v{champion}: name the version "
                "to roll back to with to_version (a rollback is never undone unless the version is named)"
            )
    if version == champion:
        raise RollbackError(f"{model_name} v{version} is already the champion: there is nothing to roll back")
    return version


def verify(tracking_uri: str, model_name: str, version: str) -> VerifiedVersion:
    """The registered version, its card and documents checked against the registry's digests; ValueError naming
    an unknown version, RollbackError naming a file that fails its digest (never overridable)."""
    try:
        return registry.verified_version(tracking_uri, model_name, version)
    except model_bundle.BundleError as error:
        raise _tampered(f"{model_name} v{version}", error) from error


def _tampered(what: str, error: Exception) -> RollbackError:
    return RollbackError(
        f"refusing to roll back to {what}: its files fail their digest checks, so it is not served (force cannot "
        f"override this): {error}"
    )


def contract_problems(
    tracking_uri: str, model_name: str, champion: str | None, candidate: VerifiedVersion
) -> list[str]:
    """Why ``candidate``'s data contract does not suit the requests the champion (version ``champion``) serves;
    empty when it does or there is no champion. A champion whose files fail their digests has no contract to
    trust: that is a problem too (force may override it, to roll away from a damaged champion)."""
    if champion is None:
        return []
    try:
        served = registry.verified_version(tracking_uri, model_name, champion, f"{model_name} v{champion}")
    except model_bundle.BundleError as error:
        return [f"the data contract of the champion v{champion} cannot be trusted: {error}"]
    differences = contract_differences(served, candidate)
    return (
        [f"its data contract differs from the champion v{champion}'s: {'; '.join(differences)}"] if differences else []
    )


def contract_differences(served: VerifiedVersion, candidate: VerifiedVersion) -> list[str]:
    """How ``candidate``'s data contract differs from ``served``'s in what requests must be: target, task, feature
    names, and each shared feature's type, by model_bundle.schema's own "types" check over both schema.json (the
    cards' feature types for a version registered without one). Empty: requests to one suit the other."""
    from model_bundle.schema import TYPES, compare

    was, now = served.card, candidate.card
    differences = [
        f"it predicts {key} {after!r}, the champion {before!r}"
        for key, before, after in (("target", was.target, now.target), ("task", was.task, now.task))
        if before != after
    ]
    missing = [name for name in was.feature_names if name not in now.feature_names]
    added = [name for name in now.feature_names if name not in was.feature_names]
    if missing:
        differences.append(f"it does not take feature(s) {missing} that the champion takes")
    if added:
        differences.append(f"it needs feature(s) {added} that the champion does not take")
    shared = [name for name in was.feature_names if name in now.feature_names]
    reference, current = served.document(model_bundle.SCHEMA_FILE), candidate.document(model_bundle.SCHEMA_FILE)
    if reference and current:
        # compare() counts values in a frame; an empty one leaves only the schemas' own differences.
        columns = {column["name"] for schema in (reference, current) for column in schema["columns"]}
        differences += [
            finding.message
            for finding in compare(reference, current, pd.DataFrame(columns=sorted(columns)))
            if finding.check == TYPES and finding.column in shared
        ]
    else:
        types = {feature["name"]: feature["type"] for feature in was.features}
        differences += [
            f"feature {feature['name']!r} is {feature['type']}, {types[feature['name']]} for the champion"
            for feature in now.features
            if feature["name"] in shared and feature["type"] != types[feature["name"]]
        ]
    return differences
