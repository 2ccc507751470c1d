"""The Seldon Core 1.17 Python-wrapper model class serving a model bundle.

Start it with ``seldon-core-microservice serving.model_server.ModelServer`` and graph parameters
``model_uri`` (the bundle directory; ``/mnt/models`` where the storage initializer puts it) and
``model_sha256`` (the digest recorded at training; the server refuses to load other bytes).

Requests name their columns: ``{"data": {"names": ["size_sqm", ...], "ndarray": [[120.5, ...], ...]}}``.
The response holds one prediction per row, named after the target.

Custom metrics (on the metrics port, path /metrics locally, /prometheus in a cluster):
- ``model_requests_total{outcome="ok"|"error", reason}``: prediction requests;
- ``model_prediction_rows_total``: rows predicted;
- ``model_prediction_seconds``: histogram of the model's time per request (parsing included);
- ``model_predicted_class_total{class}``: predicted labels (classifiers).
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np
import pandas as pd
from seldon_core.flask_utils import SeldonMicroserviceException

import model_bundle

logger = logging.getLogger(__name__)

DEFAULT_MODEL_URI = "/mnt/models"


class ModelServer:
    def __init__(self, model_uri: str = DEFAULT_MODEL_URI, model_sha256: str = "", max_rows: int = 100_000):
        self.model_uri = model_uri
        self.model_sha256 = model_sha256
        self.max_rows = int(max_rows)
        self.bundle: model_bundle.Bundle | None = None
        self._pending_metrics: list[dict] = []
        self._metrics_lock = threading.Lock()

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

    @property
    def class_names(self) -> list[str]:
        return [self.bundle.card["target"]] if self.bundle else []

    def predict(self, X, features_names=None, meta=None):
        started = time.perf_counter()
        try:
            if self.bundle is None:
                raise SeldonMicroserviceException("model is not loaded", status_code=503, reason="NOT_LOADED")
            frame = self._frame(X, features_names)
            try:
                predictions = self.bundle.predict(frame)
            except model_bundle.FeatureError as error:
                raise SeldonMicroserviceException(str(error), status_code=400, reason="BAD_FEATURES") from error
        except SeldonMicroserviceException as error:
            self._record(
                [
                    {
                        "type": "COUNTER",
                        "key": "model_requests",
                        "value": 1,
                        "tags": {"outcome": "error", "reason": error.reason},
                    }
                ]
            )
            raise
        elapsed_ms = (time.perf_counter() - started) * 1000
        recorded = [
            {"type": "COUNTER", "key": "model_requests", "value": 1, "tags": {"outcome": "ok", "reason": ""}},
            {"type": "COUNTER", "key": "model_prediction_rows", "value": len(predictions)},
            {"type": "TIMER", "key": "model_prediction_seconds", "value": elapsed_ms},
        ]
        if self.bundle.task == "classification":
            labels, counts = np.unique(predictions.astype(str), return_counts=True)
            recorded += [
                {
                    "type": "COUNTER",
                    "key": "model_predicted_class",
                    "value": int(count),
                    "tags": {"class": str(label)},
                }
                for label, count in zip(labels, counts, strict=True)
            ]
        self._record(recorded)
        return np.asarray(predictions).reshape(-1, 1)

    def _frame(self, X, features_names) -> pd.DataFrame:
        if not features_names:
            raise SeldonMicroserviceException(
                'request must name its columns: {"data": {"names": [...], "ndarray": [[...]]}}',
                status_code=400,
                reason="NO_COLUMN_NAMES",
            )
        rows = np.asarray(X, dtype=object)
        if rows.ndim == 1:
            rows = rows.reshape(1, -1)
        if rows.ndim != 2 or rows.shape[1] != len(features_names):
            raise SeldonMicroserviceException(
                f"each row must have {len(features_names)} values, one per name in {list(features_names)}; "
                f"got data of shape {list(rows.shape)}",
                status_code=400,
                reason="BAD_SHAPE",
            )
        if rows.shape[0] == 0:
            raise SeldonMicroserviceException("request has no rows", status_code=400, reason="EMPTY")
        if rows.shape[0] > self.max_rows:
            raise SeldonMicroserviceException(
                f"request has {rows.shape[0]} rows, more than the limit of {self.max_rows}",
                status_code=413,
                reason="TOO_MANY_ROWS",
            )
        return pd.DataFrame(rows, columns=[str(name) for name in features_names])

    def _record(self, metrics: list[dict]) -> None:
        with self._metrics_lock:
            self._pending_metrics.extend(metrics)

    def metrics(self) -> list[dict]:
        """Metrics gathered since the last call; Seldon calls this after every prediction and health check."""
        with self._metrics_lock:
            pending, self._pending_metrics = self._pending_metrics, []
        return pending

    def health_status(self) -> dict:
        if self.bundle is None:
            raise SeldonMicroserviceException("model is not loaded", status_code=503, reason="NOT_LOADED")
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
