"""The model bundle: the directory a trained model travels in, shared by pipeline steps and the model server.

A bundle is a directory holding ``model.joblib`` (a fitted scikit-learn Pipeline, preprocessing included, so
serving takes raw features) and ``model.json`` (the model card: features and their types, target, task,
classes, library versions, the sha256 of model.joblib, data hash and metrics) and JSON documents that travel
with the model, each digest-checked on loading: ``schema.json``, the data contract (``model_bundle.schema``), and
``reference_profile.json``, the training data's distribution.

This package needs only numpy, pandas and joblib, so that both runtimes (the kfp one and the Seldon one,
which can never share an environment) import the same code: features are coerced in serving exactly the
way they were in training.
"""

from model_bundle.bundle import (
    CARD_FILE,
    MODEL_FILE,
    Bundle,
    BundleError,
    file_sha256,
    library_versions,
    load,
    read_card,
    save,
)
from model_bundle.features import (
    CATEGORICAL,
    NUMERIC,
    FeatureError,
    coerce_columns,
    coerce_features,
    infer_feature_types,
)
from model_bundle.schema import PROFILE_FILE, SCHEMA_FILE, SchemaViolation, check_request

__all__ = [
    "CARD_FILE",
    "CATEGORICAL",
    "MODEL_FILE",
    "NUMERIC",
    "PROFILE_FILE",
    "SCHEMA_FILE",
    "Bundle",
    "BundleError",
    "FeatureError",
    "SchemaViolation",
    "check_request",
    "coerce_columns",
    "coerce_features",
    "file_sha256",
    "infer_feature_types",
    "library_versions",
    "load",
    "read_card",
    "save",
]
