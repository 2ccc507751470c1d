"""The Seldon Core 1.17 Python-wrapper model class serving a model bundle.

Start it with ``seldon-core-microservice serving.model_server.ModelServer`` and graph parameters
``model_uri`` (the bundle directory; ``/mnt/models`` where the storage initializer puts it) and
``model_sha256`` (the digest recorded at training; the server refuses to load other bytes).

Requests name their columns: ``{"data": {"names": ["size_sqm", ...], "ndarray": [[120.5, ...], ...]}}``.
The response holds one prediction per row, named after the target. A malformed request is answered 4xx
with a message naming the problem (``{"status": {"code": 400, "info": ..., "reason": ...}}``).

The class parses requests itself (``predict_raw``) rather than through Seldon's ``predict(X, names)``:
Seldon's parser turns a mixed row into an array of strings (losing which values were numbers or booleans)
and answers 500 to ragged rows; here every client mistake becomes a 4xx, and its error metric is recorded
with the response, at once (``metrics()`` would only be collected after a later successful call).

Custom metrics (on the metrics port, path /metrics locally, /prometheus in a cluster):
- ``model_requests_total{outcome="ok"|"error", reason}``: prediction requests;
- ``model_prediction_rows_total``: rows predicted;
- ``model_prediction_seconds``: histogram of the time per request in this class (parsing included);
- ``model_predicted_class_total{class}``: predicted labels (classifiers).
"""

from __future__ import annotations

import json
import logging
import time

import numpy as np
import pandas as pd
from flask import Blueprint, jsonify
from seldon_core.utils import json_to_seldon_message, seldon_message_to_json

import model_bundle

logger = logging.getLogger(__name__)

DEFAULT_MODEL_URI = "/mnt/models"
REQUEST_FORMAT = '{"data": {"names": [...], "ndarray": [[...], ...]}}'


class RequestError(ValueError):
    """A client mistake: answered with ``status_code`` and a message naming the problem."""

    def __init__(self, message: str, reason: str, status_code: int = 400):
        super().__init__(message)
        self.reason = reason
        self.status_code = status_code


def _status(code: int, info: str, reason: str) -> dict:
    return {"status": {"code": code, "info": info, "reason": reason, "status": "FAILURE"}}


# Seldon registers this Blueprint when the model class has it. Seldon itself json.loads the form field that
# its own client sends (`json=...`) and would answer a malformed one with a 500.
_error_handler = Blueprint("model_error_handler", __name__)


@_error_handler.app_errorhandler(json.JSONDecodeError)
def _invalid_json(error: json.JSONDecodeError):
    response = jsonify(_status(400, f"request body is not valid JSON: {error}", "BAD_JSON"))
    response.status_code = 400
    return response


class ModelServer:
    model_error_handler = _error_handler

    def __init__(self, model_uri: str = DEFAULT_MODEL_URI, model_sha256: str = "", max_rows: int = 100_000):
        self.model_uri = model_uri
        self.model_sha256 = model_sha256
        self.max_rows = int(max_rows)
        self.bundle: model_bundle.Bundle | None = None

    def load(self) -> None:
        """Verifies and loads the bundle (once per worker); any failure stops the server with the reason."""
        try:
            self.bundle = model_bundle.load(self.model_uri, expected_sha256=self.model_sha256 or None)
        except Exception as error:
            # Seldon swallows AttributeError raised by load(); re-raise everything as one clear RuntimeError.
            logger.error("refusing to serve: %s", error)
            raise RuntimeError(f"cannot load model from {self.model_uri}: {error}") from error
        logger.info(
            "loaded %s model for %r from %s (sha256 %s)",
            self.bundle.task,
            self.bundle.card["target"],
            self.model_uri,
            self.bundle.card["sha256"],
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
            frame = self._frame(request)
            try:
                predictions = self.bundle.predict(frame)
            except model_bundle.FeatureError as error:
                raise RequestError(str(error), "BAD_FEATURES") from error
        except RequestError as error:
            outcome = {"key": "model_requests", "type": "COUNTER", "value": 1}
            outcome["tags"] = {"outcome": "error", "reason": error.reason}
            return {**_status(error.status_code, str(error), error.reason), "meta": {"metrics": [outcome]}}

        metrics = [
            {"key": "model_requests", "type": "COUNTER", "value": 1, "tags": {"outcome": "ok", "reason": ""}},
            {"key": "model_prediction_rows", "type": "COUNTER", "value": len(predictions)},
            {"key": "model_prediction_seconds", "type": "TIMER", "value": (time.perf_counter() - started) * 1000},
        ]
        if self.bundle.task == "classification":
            labels, counts = np.unique(predictions.astype(str), return_counts=True)
            metrics += [
                {"key": "model_predicted_class", "type": "COUNTER", "value": int(count), "tags": {"class": label}}
                for label, count in zip(labels.tolist(), counts.tolist(), strict=True)
            ]
        return {
            "data": {"names": [self.bundle.card["target"]], "ndarray": predictions.reshape(-1, 1).tolist()},
            "meta": {"metrics": metrics},
        }

    def _frame(self, request: dict) -> pd.DataFrame:
        """The request's rows as a DataFrame; pandas infers each column from the JSON values themselves."""
        data = request.get("data") if isinstance(request, dict) else None
        if not isinstance(data, dict):
            raise RequestError(f"request must have a 'data' object: {REQUEST_FORMAT}", "NO_DATA")
        names = data.get("names")
        if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
            raise RequestError(f"request must name its columns in data.names: {REQUEST_FORMAT}", "NO_COLUMN_NAMES")
        rows = data.get("ndarray")
        if not isinstance(rows, list):
            raise RequestError(f"request must carry its rows in data.ndarray: {REQUEST_FORMAT}", "NO_NDARRAY")
        if not rows:
            raise RequestError("request has no rows", "EMPTY")
        if len(rows) > self.max_rows:
            raise RequestError(
                f"request has {len(rows)} rows, more than the limit of {self.max_rows}", "TOO_MANY_ROWS", 413
            )
        for index, row in enumerate(rows):
            if not isinstance(row, list) or len(row) != len(names):
                size = f"{len(row)} values" if isinstance(row, list) else f"a {type(row).__name__}"
                raise RequestError(
                    f"row {index} has {size}; each row must be a list of {len(names)} values, one per name in {names}",
                    "BAD_SHAPE",
                )
        frame = pd.DataFrame(rows, columns=names)
        for position, name in enumerate(names):
            values = frame.iloc[:, position]
            if values.dtype == object:
                nested = values.map(lambda value: isinstance(value, list | dict))
                if nested.any():
                    raise RequestError(
                        f"column {name!r} holds a nested list or object in row {int(np.argmax(nested.to_numpy()))}; "
                        "values must be numbers, strings, booleans or null",
                        "BAD_VALUE",
                    )
        return frame

    def health_status(self) -> dict:
        if self.bundle is None:
            raise RuntimeError("model is not loaded")
        return {"status": "ok", "target": self.bundle.card["target"], "sha256": self.bundle.card["sha256"]}

    def init_metadata(self) -> dict:
        """The input/output signature, read from the model card (Seldon asks before load() runs)."""
        card = model_bundle.read_card(self.model_uri)
        return {
            "name": card["target"],
            "versions": [card["sha256"][:12]],
            "platform": f"scikit-learn {card['library_versions'].get('scikit-learn', '')}",
            "inputs": [{"messagetype": "ndarray", "schema": {"names": [f["name"] for f in card["features"]]}}],
            "outputs": [{"messagetype": "ndarray", "schema": {"names": [card["target"]]}}],
            "custom": {
                "task": card["task"],
                "feature_types": ",".join(f"{f['name']}:{f['type']}" for f in card["features"]),
                "classes": ",".join(card.get("classes") or []),
            },
        }
