"""Saving and loading a model bundle: ``model.joblib`` plus its card ``model.json``, integrity-checked."""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import joblib
import pandas as pd

from model_bundle.features import coerce_features

MODEL_FILE = "model.joblib"
CARD_FILE = "model.json"
FORMAT_VERSION = 1
REQUIRED_CARD_KEYS = ("format_version", "sha256", "task", "target", "features", "library_versions")
# A pickled scikit-learn model is only trusted by the exact version that wrote it.
VERSION_LOCKED_LIBRARIES = ("scikit-learn",)


class BundleError(RuntimeError):
    """A model bundle is missing, malformed or fails its integrity check; the message names the file."""


@dataclass(frozen=True)
class Bundle:
    model: Any
    card: dict
    directory: Path

    @property
    def features(self) -> list[dict[str, str]]:
        return self.card["features"]

    @property
    def feature_names(self) -> list[str]:
        return [feature["name"] for feature in self.card["features"]]

    @property
    def task(self) -> str:
        return self.card["task"]

    def predict(self, features: pd.DataFrame):
        """Predictions for raw feature columns, coerced exactly as in training (raises FeatureError)."""
        return self.model.predict(coerce_features(features, self.features))


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    versions = {name: version(name) for name in ("scikit-learn", "numpy", "pandas", "joblib")}
    versions["python"] = platform.python_version()
    return versions


def save(directory: str | Path, model: Any, card: dict) -> dict:
    """Writes ``model`` and its card into ``directory``; returns the card as written (with sha256 and versions)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model_path = directory / MODEL_FILE
    joblib.dump(model, model_path)
    written = {
        **card,
        "format_version": FORMAT_VERSION,
        "model_file": MODEL_FILE,
        "sha256": file_sha256(model_path),
        "library_versions": library_versions(),
    }
    (directory / CARD_FILE).write_text(json.dumps(written, indent=2, sort_keys=True, default=_json_default) + "\n")
    return written


def read_card(directory: str | Path) -> dict:
    card_path = Path(directory) / CARD_FILE
    if not card_path.is_file():
        raise BundleError(f"no model card: {card_path} does not exist")
    try:
        card = json.loads(card_path.read_text())
    except json.JSONDecodeError as error:
        raise BundleError(f"model card {card_path} is not valid JSON: {error}") from error
    missing = [key for key in REQUIRED_CARD_KEYS if key not in card]
    if missing:
        raise BundleError(f"model card {card_path} lacks required key(s) {missing}")
    if card["format_version"] != FORMAT_VERSION:
        raise BundleError(
            f"model card {card_path} has format_version {card['format_version']}, expected {FORMAT_VERSION}"
        )
    return card


def load(directory: str | Path, expected_sha256: str | None = None) -> Bundle:
    """Loads a bundle after checking model.joblib against its card and, when given, the deployer's digest.

    joblib loading runs code, so the bytes are verified before they are unpickled.
    """
    directory = Path(directory)
    card = read_card(directory)
    model_path = directory / MODEL_FILE
    if not model_path.is_file():
        raise BundleError(f"no model file: {model_path} does not exist")
    actual = file_sha256(model_path)
    if expected_sha256 and actual != expected_sha256:
        raise BundleError(
            f"sha256 digest mismatch for {model_path}: expected {expected_sha256}, found {actual}; refusing to load"
        )
    if actual != card["sha256"]:
        raise BundleError(
            f"sha256 digest mismatch for {model_path}: its card records {card['sha256']}, found {actual}; "
            "refusing to load"
        )
    runtime = library_versions()
    for name in VERSION_LOCKED_LIBRARIES:
        trained_with = card["library_versions"].get(name)
        if trained_with != runtime[name]:
            raise BundleError(
                f"{model_path} was written by {name} {trained_with} but this runtime has {runtime[name]}; "
                "the pins in requirements.txt and images/serving/requirements.txt must match"
            )
    return Bundle(model=joblib.load(model_path), card=card, directory=directory)


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays (class labels, metrics) are not JSON-native.
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"model card value {value!r} of type {type(value).__name__} is not JSON serialisable")
