"""The model bundle: the directory a trained model travels in, shared by pipeline steps and the model server.

A bundle is a directory holding ``model.joblib`` (a fitted scikit-learn Pipeline that types its own raw input and
preprocesses it, so ``joblib.load("model.joblib").predict(raw rows)`` needs nothing of this package) and
``model.json`` (the model card: features and their types, target, task, classes, library versions, the sha256 of
model.joblib, data hash, metrics and the sensitive columns' groups, ``model_bundle.groups``) and JSON documents
that travel with the model, each digest-checked on loading: ``schema.json``, the data contract
(``model_bundle.schema``), and ``reference_profile.json``, the training data's distribution.

This package needs only numpy, pandas and joblib, so that both runtimes (the kfp one and the serving one) import
the same code: requests and datasets are checked and typed exactly as the model types them
(``model_bundle.features``).
"""

from model_bundle.bundle import (
    Bundle,
    BundleError,
    BundleFormatError,
    check_document_name,
    file_sha256,
    library_versions,
    load,
    read_card,
    read_documents,
    save,
)
from model_bundle.card import (
    CARD_FILE,
    CLASSIFICATION,
    MODEL_FILE,
    REGRESSION,
    TASKS,
    CardError,
    ModelCard,
)
from model_bundle.features import (
    AS_CATEGORY,
    AS_NUMBER,
    CATEGORICAL,
    NUMERIC,
    FeatureError,
    coerce_columns,
    coerce_features,
    infer_feature_types,
)
from model_bundle.groups import (
    MAX_SENSITIVE_GROUPS,
    MISSING_GROUP,
    NOT_SENT_GROUP,
    OTHER_GROUP,
    group_name,
    top_groups,
)
from model_bundle.profile import PROFILE_FILE, build_profile
from model_bundle.schema import SCHEMA_FILE, SchemaViolation, check_request, excluded_columns

__all__ = [
    "AS_CATEGORY",
    "AS_NUMBER",
    "CARD_FILE",
    "CATEGORICAL",
    "CLASSIFICATION",
    "MAX_SENSITIVE_GROUPS",
    "MISSING_GROUP",
    "MODEL_FILE",
    "NOT_SENT_GROUP",
    "NUMERIC",
    "OTHER_GROUP",
    "PROFILE_FILE",
    "REGRESSION",
    "SCHEMA_FILE",
    "TASKS",
    "Bundle",
    "BundleError",
    "BundleFormatError",
    "CardError",
    "FeatureError",
    "ModelCard",
    "SchemaViolation",
    "build_profile",
    "check_document_name",
    "check_request",
    "coerce_columns",
    "coerce_features",
    "excluded_columns",
    "file_sha256",
    "group_name",
    "infer_feature_types",
    "library_versions",
    "load",
    "read_card",
    "read_documents",
    "save",
    "top_groups",
]
