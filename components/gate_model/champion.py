"""The registry's champion as the gate finds it: absent (cold start), unloadable (a person must look), not
comparable with the challenger on this data, or loaded through the verified registry path and scored on this run's
test set."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

import pandas as pd

from components._common import registry
from components._common.scoring import Scored, score_bundle
from model_bundle import Bundle, ModelCard


@dataclass
class Champion:
    """What the gate compares with. All fields None: no champion yet (a cold start)."""

    # Its registered version; None also when its card failed verification before the version was read (then
    # ``problem`` or ``incompatibility`` names it).
    version: str | None = None
    scored: Scored | None = None
    problem: str | None = None  # its files cannot be loaded: a person must look
    incompatibility: str | None = None  # it cannot be compared fairly on this data

    @property
    def absent(self) -> bool:
        return self.version is None and self.problem is None and self.incompatibility is None

    @property
    def subject(self) -> str:
        """How the reasons cite it: ``v3``, or empty when its version is not known."""
        return f"v{self.version}" if self.version is not None else ""


def load_champion(tracking_uri: str, model_name: str, challenger: Bundle, test: pd.DataFrame) -> Champion:
    """The registry's champion of ``model_name``, checked against ``challenger`` and scored on ``test``.

    Its card and documents are verified against their digests first (registry.champion); its model file is
    downloaded and unpickled only when it can be compared. A file failing its check is a ``problem`` naming it;
    intact files of another format version, or a model pickled by another scikit-learn, an ``incompatibility`` (the
    incompatible_champion policy decides).
    """
    from model_bundle import SCHEMA_FILE, BundleError, BundleFormatError, FeatureError

    try:
        verified = registry.champion(tracking_uri, model_name)
    except BundleFormatError as error:
        return Champion(incompatibility=str(error))
    except BundleError as error:
        return Champion(problem=str(error))
    if verified is None:
        return Champion()
    champion = Champion(version=verified.version)
    champion.incompatibility = incompatibility(verified.card, verified.document(SCHEMA_FILE), challenger, test)
    if champion.incompatibility is not None:
        return champion
    with tempfile.TemporaryDirectory() as workdir:
        try:
            bundle = verified.load_bundle(workdir)
        except BundleFormatError as error:
            champion.incompatibility = _as_registered(error, workdir, verified, tracking_uri)
            return champion
        except (BundleError, OSError) as error:
            champion.problem = _as_registered(error, workdir, verified, tracking_uri)
            return champion
        try:
            champion.scored = score_bundle(bundle, test)
        except FeatureError as error:
            champion.incompatibility = str(error)
    return champion


def _as_registered(error: Exception, workdir: str, verified: registry.VerifiedVersion, tracking_uri: str) -> str:
    """The champion's load error as its reader can act on it: the model, version and registry, and its files named
    by their URI in the registry rather than in ``workdir``, which is deleted before anyone reads the message."""
    location = registry.registry_location(tracking_uri)
    return f"{verified.description} in the registry {location}: {str(error).replace(workdir, verified.source)}"


def incompatibility(card: ModelCard, schema: dict | None, challenger: Bundle, test: pd.DataFrame) -> str | None:
    """Why the champion with ``card`` and data contract ``schema`` cannot be compared fairly with ``challenger`` on
    ``test``, or None when it can."""
    from model_bundle.schema import TYPES, compare

    for key, was, now in (("target", card.target, challenger.card.target), ("task", card.task, challenger.card.task)):
        if was != now:
            return f"it predicts {key} {was!r}, the challenger {now!r}"
    if card.classes is not None and challenger.card.classes is not None:
        # Labels compare as text: 1 read as 1.0 (a label column with a missing value is floats) is another class,
        # and the champion, never right on this data, would score 0 against any challenger.
        unknown = [label for label in card.classes if label not in challenger.card.classes]
        if unknown:
            return (
                f"it answers class(es) {unknown} that this data does not have (its classes: "
                f"{challenger.card.classes}): were the labels renamed or retyped?"
            )
    missing = [name for name in card.feature_names if name not in test.columns]
    if missing:
        return f"it needs column(s) {missing} that this data does not have"
    if schema and challenger.schema:
        needed = set(card.feature_names)
        changed = [
            finding.message
            for finding in compare(schema, challenger.schema, test)
            if finding.check == TYPES and finding.column in needed
        ]
        if changed:
            return "; ".join(changed)
    return None
