"""The Seldon Core 1.17 Python-wrapper model class serving a model bundle.

Start it with ``seldon-core-microservice serving.model_server.ModelServer`` and graph parameters
``model_uri`` (the bundle directory; ``/mnt/models`` where the storage initializer puts it),
``model_sha256`` (the digest recorded at training; the server refuses to load other bytes) and optionally
``max_rows`` (largest batch accepted, default 100000) and ``schema_checks`` (which checks of the model's data
contract, ``schema.json``, requests are held to: a comma-separated subset of ``nulls,domain,range``, or
``none``; default ``domain``: a category the model never saw is refused).

Requests (``POST /api/v1.0/predictions``), any column order:
- by column name: ``{"data": {"names": ["size_sqm", ...], "ndarray": [[120.5, ...], ...]}}``;
- as records: ``{"jsonData": [{"size_sqm": 120.5, ...}, ...]}`` or one object ``{"jsonData": {...}}``;
- as a tensor, when every feature is numeric: ``{"data": {"names": [...], "tensor": {"shape": [n, k],
  "values": [...]}}}`` (``names`` may be left out: then the model's feature order).
Missing values are ``null``; ``NaN`` and ``Infinity`` are not JSON and are refused. Add
``"meta": {"tags": {"probabilities": true}}`` to a classifier request for class probabilities.

Responses mirror the request: ``data.ndarray`` (or ``data.tensor`` for a numeric tensor request) with one row
per input row, named after the target (then ``probability_<class>`` columns), or ``jsonData`` records
``{"<target>": ..., "probabilities": {"<class>": ...}}``. A malformed request gets a 4xx with
``{"status": {"code": ..., "info": "<what is wrong>", "reason": "<CODE>"}}``.

The class parses requests itself (``predict_raw``) rather than through Seldon's ``predict(X, names)``:
Seldon's parser turns a mixed row into an array of strings (losing which values were numbers or booleans)
and answers 500 to ragged rows; here every client mistake becomes a 4xx, and its error metric is recorded
with the response, at once (``metrics()`` would only be collected after a later successful call).

Custom metrics (on the metrics port, path /metrics locally, /prometheus in a cluster):
- ``model_requests_total{outcome="ok"|"error", reason}``: prediction requests;
- ``model_prediction_rows_total``: rows predicted;
- ``model_prediction_seconds``: histogram of the time per request in this class (parsing included);
- ``model_missing_values_total{feature}``: missing input values, per feature;
- ``model_predicted_class_total{class}``: predicted labels (classifiers);
- ``model_predicted_value_total{bucket}``: predictions per range of the training target's deciles (regressors);
- ``model_feature_values_total{feature, bin}`` and ``model_feature_drift{feature}``: the requests' values per
  training decile or category, and how far their recent distribution is from training (see feature_monitor).
"""

from __future__ import annotations

import itertools
import json
import logging
import operator
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from flask import Blueprint, jsonify, request
from seldon_core.utils import json_to_seldon_message, seldon_message_to_json

import model_bundle
from serving.feature_monitor import FeatureMonitor

logger = logging.getLogger(__name__)

DEFAULT_MODEL_URI = "/mnt/models"
REQUEST_FORMAT = '{"data": {"names": [...], "ndarray": [[...], ...]}} or {"jsonData": [{...}, ...]}'
PREDICTION_PATHS = ("/api/v1.0/predictions", "/api/v0.1/predictions", "/predict")
# What Seldon's request parser reads: a JSON body, or its client's `json=` form field.
ACCEPTED_CONTENT_TYPES = ("application/json", "application/x-www-form-urlencoded", "multipart/form-data")


class RequestError(ValueError):
    """A client mistake: answered with ``status_code`` and a message naming the problem."""

    def __init__(self, message: str, reason: str, status_code: int = 400):
        super().__init__(message)
        self.reason = reason
        self.status_code = status_code


@dataclass
class ParsedRequest:
    columns: dict[str, Sequence]  # the request's values by column name, as parsed from JSON
    form: str  # "ndarray", "tensor", "records" (a list of objects) or "record" (one object)
    probabilities: bool


def _status(code: int, info: str, reason: str) -> dict:
    return {"status": {"code": code, "info": info, "reason": reason, "status": "FAILURE"}}


def _error_response(code: int, info: str, reason: str):
    response = jsonify(_status(code, info, reason))
    response.status_code = code
    return response


# Seldon registers this Blueprint when the model class has it: it handles what happens before a request
# reaches the class (Seldon itself json.loads its client's form field and would answer a malformed one 500).
_http_hooks = Blueprint("model_error_handler", __name__)


@_http_hooks.before_app_request
def _check_content_type():
    if request.method == "POST" and request.path in PREDICTION_PATHS and request.mimetype not in ACCEPTED_CONTENT_TYPES:
        return _error_response(
            415, f"Content-Type must be application/json, got {request.mimetype or 'none'!r}", "BAD_CONTENT_TYPE"
        )
    return None


@_http_hooks.app_errorhandler(json.JSONDecodeError)
def _invalid_json(error: json.JSONDecodeError):
    return _error_response(400, f"request body is not valid JSON: {error}", "BAD_JSON")


class ModelServer:
    model_error_handler = _http_hooks

    def __init__(
        self,
        model_uri: str = DEFAULT_MODEL_URI,
        model_sha256: str = "",
        max_rows: int = 100_000,
        schema_checks: str = ",".join(model_bundle.schema.DEFAULT_REQUEST_CHECKS),
    ):
        self.model_uri = model_uri
        self.model_sha256 = model_sha256
        self.max_rows = int(max_rows)
        self.schema_checks = model_bundle.schema.parse_request_checks(schema_checks)
        self.bundle: model_bundle.Bundle | None = None
        self._bucket_edges: np.ndarray | None = None
        self._bucket_labels: list[str] = []
        self._feature_monitor: FeatureMonitor | None = None

    def load(self) -> None:
        """Verifies and loads the bundle (once per worker); any failure stops the server with the reason."""
        try:
            self.bundle = model_bundle.load(self.model_uri, expected_sha256=self.model_sha256 or None)
        except Exception as error:
            # Seldon swallows AttributeError raised by load(); re-raise everything as one clear RuntimeError.
            logger.error("refusing to serve: %s", error)
            raise RuntimeError(f"cannot load model from {self.model_uri}: {error}") from error
        profile = self.bundle.documents.get(model_bundle.PROFILE_FILE)
        if profile:
            self._feature_monitor = FeatureMonitor(profile, self.bundle.features)
        edges = self.bundle.card.prediction_buckets
        if edges:
            self._bucket_edges = np.asarray(edges, dtype="float64")
            self._bucket_labels = _bucket_labels(edges)
        logger.info(
            "loaded %s model for %r from %s (sha256 %s)",
            self.bundle.task,
            self.bundle.card.target,
            self.model_uri,
            self.bundle.card.sha256,
        )

    def predict_raw(self, request):
        """Answers a Seldon request: REST requests arrive as dicts, gRPC ones as SeldonMessage protos."""
        if isinstance(request, dict):
            return self._answer(request)
        return json_to_seldon_message(self._answer(seldon_message_to_json(request)))

    def _answer(self, request: dict) -> dict:
        started = time.perf_counter()
        try:
            if self.bundle is None:
                raise RequestError("model is not loaded", "NOT_LOADED", status_code=503)
            parsed = self._parse(request)
            try:
                # Checked and typed as the model types them, for the data contract and the feature signals.
                features = model_bundle.coerce_columns(
                    parsed.columns, self.bundle.features, ignore=self.bundle.non_feature_columns
                )
                # The same data contract validate_data holds datasets to (model_bundle.schema).
                model_bundle.check_request(self.bundle.schema, features, self.schema_checks)
            except model_bundle.SchemaViolation as error:
                raise RequestError(str(error), "SCHEMA_VIOLATION") from error
            except model_bundle.FeatureError as error:
                raise RequestError(str(error), "BAD_FEATURES") from error
            missing = _missing_values(features, parsed.columns)
            # The raw rows, as joblib.load("model.joblib").predict would get them anywhere: the model types them.
            rows = pd.DataFrame(parsed.columns)
            predictions = self.bundle.predict(rows)
            probabilities = self.bundle.predict_proba(rows) if parsed.probabilities else None
        except RequestError as error:
            outcome = {"key": "model_requests", "type": "COUNTER", "value": 1}
            outcome["tags"] = {"outcome": "error", "reason": error.reason}
            return {**_status(error.status_code, str(error), error.reason), "meta": {"metrics": [outcome]}}

        response = self._response(parsed, predictions, probabilities)
        elapsed_ms = (time.perf_counter() - started) * 1000
        response["meta"] = {"metrics": self._metrics(features, missing, predictions, elapsed_ms)}
        return response

    def _parse(self, request: dict) -> ParsedRequest:
        if not isinstance(request, dict):
            raise RequestError(f"request must be a JSON object: {REQUEST_FORMAT}", "NO_DATA")
        probabilities = _wants_probabilities(request)
        if probabilities and self.bundle.task != "classification":
            raise RequestError(
                "probabilities are only available from a classifier; this model is a regressor", "NO_PROBABILITIES"
            )
        if "jsonData" in request:
            records = request["jsonData"]
            form = "record" if isinstance(records, dict) else "records"
            names, rows = _records_to_rows([records] if form == "record" else records)
        else:
            data = request.get("data")
            if not isinstance(data, dict):
                raise RequestError(f"request must have a 'data' object or 'jsonData': {REQUEST_FORMAT}", "NO_DATA")
            if "tensor" in data:
                return ParsedRequest(self._tensor_columns(data), "tensor", probabilities)
            form = "ndarray"
            names, rows = _ndarray_to_rows(data)
        self._check_size(len(rows))
        return ParsedRequest(_columns(names, rows), form, probabilities)

    def _check_size(self, count: int) -> None:
        if count == 0:
            raise RequestError("request has no rows", "EMPTY")
        if count > self.max_rows:
            raise RequestError(
                f"request has {count} rows, more than the limit of {self.max_rows}", "TOO_MANY_ROWS", 413
            )

    def _tensor_columns(self, data: dict) -> dict[str, np.ndarray]:
        categorical = [f["name"] for f in self.bundle.features if f["type"] != model_bundle.NUMERIC]
        if categorical:
            raise RequestError(
                f"a tensor carries numbers only, but this model has categorical column(s) {categorical}; "
                "send data.names + data.ndarray or jsonData",
                "TENSOR_NOT_NUMERIC",
            )
        tensor = data["tensor"]
        names = data.get("names") or self.bundle.feature_names
        shape = tensor.get("shape") if isinstance(tensor, dict) else None
        values = tensor.get("values") if isinstance(tensor, dict) else None
        if not (isinstance(shape, list) and len(shape) == 2 and all(isinstance(n, int) and n >= 0 for n in shape)):
            raise RequestError(f"data.tensor.shape must be [rows, {len(names)}], got {shape!r}", "BAD_SHAPE")
        if shape[1] != len(names):
            raise RequestError(f"data.tensor.shape {shape} has {shape[1]} columns for {len(names)} names", "BAD_SHAPE")
        if not isinstance(values, list) or len(values) != shape[0] * shape[1]:
            count = len(values) if isinstance(values, list) else 0
            raise RequestError(
                f"data.tensor.values must hold {shape[0]} x {shape[1]} numbers, got {count}", "BAD_SHAPE"
            )
        self._check_size(shape[0])
        try:
            array = np.asarray(values, dtype="float64").reshape(shape)
        except (TypeError, ValueError) as error:
            raise RequestError(f"data.tensor.values must all be numbers: {error}", "BAD_VALUE") from error
        _check_unique(names)
        return {name: array[:, position] for position, name in enumerate(names)}

    def _response(self, parsed: ParsedRequest, predictions: np.ndarray, probabilities: np.ndarray | None) -> dict:
        target = self.bundle.card.target
        classes = [str(label) for label in self.bundle.model.classes_] if probabilities is not None else []
        if parsed.form in ("records", "record"):
            records = [{target: value} for value in predictions.tolist()]
            if probabilities is not None:
                for record, row in zip(records, probabilities.tolist(), strict=True):
                    record["probabilities"] = dict(zip(classes, row, strict=True))
            return {"jsonData": records[0] if parsed.form == "record" else records}
        if parsed.form == "tensor" and predictions.dtype.kind == "f":
            return {
                "data": {"names": [target], "tensor": {"shape": [len(predictions), 1], "values": predictions.tolist()}}
            }
        rows = predictions.reshape(-1, 1).tolist()
        names = [target]
        if probabilities is not None:
            rows = [[label, *row] for (label,), row in zip(rows, probabilities.tolist(), strict=True)]
            names += [f"probability_{label}" for label in classes]
        return {"data": {"names": names, "ndarray": rows}}

    def _metrics(
        self, features: pd.DataFrame, missing: dict[str, int], predictions: np.ndarray, elapsed_ms: float
    ) -> list[dict]:
        metrics = [
            {"key": "model_requests", "type": "COUNTER", "value": 1, "tags": {"outcome": "ok", "reason": ""}},
            {"key": "model_prediction_rows", "type": "COUNTER", "value": len(predictions)},
            {"key": "model_prediction_seconds", "type": "TIMER", "value": elapsed_ms},
        ]
        metrics += [
            {"key": "model_missing_values", "type": "COUNTER", "value": count, "tags": {"feature": name}}
            for name, count in missing.items()
            if count
        ]
        if self.bundle.task == "classification":
            labels, counts = np.unique(predictions.astype(str), return_counts=True)
            metrics += [
                {"key": "model_predicted_class", "type": "COUNTER", "value": int(count), "tags": {"class": label}}
                for label, count in zip(labels.tolist(), counts.tolist(), strict=True)
            ]
        elif self._bucket_edges is not None:
            buckets, counts = np.unique(
                np.searchsorted(self._bucket_edges, predictions, side="right"), return_counts=True
            )
            metrics += [
                {
                    "key": "model_predicted_value",
                    "type": "COUNTER",
                    "value": int(count),
                    "tags": {"bucket": self._bucket_labels[bucket]},
                }
                for bucket, count in zip(buckets.tolist(), counts.tolist(), strict=True)
            ]
        if self._feature_monitor is not None:
            metrics += self._feature_monitor.observe(features)
        return metrics

    def health_status(self) -> dict:
        if self.bundle is None:
            raise RuntimeError("model is not loaded")
        return {"status": "ok", "target": self.bundle.card.target, "sha256": self.bundle.card.sha256}

    def init_metadata(self) -> dict:
        """The input/output signature, read from the model card (Seldon asks before load() runs)."""
        card = model_bundle.read_card(self.model_uri)
        return {
            "name": card.target,
            "versions": [card.sha256[:12]],
            "platform": f"scikit-learn {card.library_versions.get('scikit-learn', '')}",
            "inputs": [{"messagetype": "ndarray", "schema": {"names": card.feature_names}}],
            "outputs": [{"messagetype": "ndarray", "schema": {"names": [card.target]}}],
            "custom": {
                "task": card.task,
                "feature_types": ",".join(f"{f['name']}:{f['type']}" for f in card.features),
                "classes": ",".join(card.classes or []),
            },
        }


def _wants_probabilities(request: dict) -> bool:
    meta = request.get("meta")
    tags = meta.get("tags") if isinstance(meta, dict) else None
    wanted = tags.get("probabilities", False) if isinstance(tags, dict) else False
    if not isinstance(wanted, bool):
        raise RequestError(f"meta.tags.probabilities must be true or false, got {wanted!r}", "BAD_META")
    return wanted


def _ndarray_to_rows(data: dict) -> tuple[list[str], list]:
    names = data.get("names")
    if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
        raise RequestError(f"request must name its columns in data.names: {REQUEST_FORMAT}", "NO_COLUMN_NAMES")
    rows = data.get("ndarray")
    if not isinstance(rows, list):
        raise RequestError(f"request must carry its rows in data.ndarray: {REQUEST_FORMAT}", "NO_NDARRAY")
    # Checked in C-speed passes over the rows; the slow search for the culprit runs only when one is wrong.
    if set(map(type, rows)) - {list} or set(map(len, rows)) - {len(names)}:
        index, row = next((i, r) for i, r in enumerate(rows) if not isinstance(r, list) or len(r) != len(names))
        size = f"{len(row)} values" if isinstance(row, list) else f"a {type(row).__name__}"
        raise RequestError(
            f"row {index} has {size}; each row must be a list of {len(names)} values, one per name in {names}",
            "BAD_SHAPE",
        )
    return names, rows


def _records_to_rows(records) -> tuple[list[str], list]:
    if not isinstance(records, list) or not all(isinstance(record, dict) for record in records):
        raise RequestError("jsonData must be an object or a list of objects, one per row", "BAD_RECORDS")
    if not records:
        return [], []
    names = list(records[0])
    expected = set(names)
    for index, record in enumerate(records):
        if set(record) != expected:
            difference = sorted(expected.symmetric_difference(record))
            raise RequestError(f"record {index} does not have the same keys as record 0: {difference}", "BAD_RECORDS")
    return names, [[record[name] for name in names] for record in records]


def _columns(names: list[str], rows: list) -> dict[str, Sequence]:
    """The request's values by column (the rows transposed), refusing nested values; one pass over the types of
    each column, so checking costs little next to the model."""
    _check_unique(names)
    # itemgetter per column transposes 10,000 rows five times faster than zip(*rows); lengths are checked already.
    columns = {name: tuple(map(operator.itemgetter(position), rows)) for position, name in enumerate(names)}
    for name, values in columns.items():
        if isinstance(values, tuple) and set(map(type, values)) & {list, dict}:
            nested = next(index for index, value in enumerate(values) if isinstance(value, list | dict))
            raise RequestError(
                f"column {name!r} holds a nested {type(values[nested]).__name__} in row {nested}; values must be "
                "numbers, strings, booleans or null",
                "BAD_VALUE",
            )
    return columns


def _check_unique(names: list[str]) -> None:
    # Columns become a dict by name: a repeated name would silently drop a column.
    if len(set(names)) != len(names):
        duplicated = sorted({name for name in names if names.count(name) > 1})
        raise RequestError(f"duplicate column(s) {duplicated}", "BAD_FEATURES")


def _missing_values(features: pd.DataFrame, columns: dict[str, Sequence]) -> dict[str, int]:
    """Missing values per feature; refuses NaN (a float the request sent, not a JSON null: the JSON parser reads
    the non-standard token NaN as a float)."""
    missing = {}
    for name in features.columns:
        count = int(pd.isna(features[name].to_numpy()).sum())
        sent = columns[name]
        nulls = sent.count(None) if isinstance(sent, tuple) else 0
        if count > nulls:
            raise RequestError(
                f"column {name!r} holds NaN, which is not JSON: send null for a missing value", "NAN_NOT_ALLOWED"
            )
        missing[name] = count
    return missing


def _bucket_labels(edges: list[float]) -> list[str]:
    """Readable names of the ranges between ``edges``: "<e0", "e0-e1", ..., ">=eN"."""
    shown = [f"{edge:.6g}" for edge in edges]
    return [f"<{shown[0]}"] + [f"{low}-{high}" for low, high in itertools.pairwise(shown)] + [f">={shown[-1]}"]
