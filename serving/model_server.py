"""The model server: a model bundle served over the Open Inference Protocol (OIP, "V2") by the KServe Python SDK,
on REST and gRPC (``inference.GRPCInferenceService``). Start it with ``python -m serving`` (see serving.settings).
Longer than ~300 lines for a reason: about 80 are this reference of the protocol as served, kept beside the code
that answers it, and the code is one KServe model class whose loading, metadata and inference (requests predicted
together) share its state; the request's wire form is serving.oip's, its columns serving.decoding's.

Endpoints (REST; gRPC has the same calls):
- ``GET /v2/health/live``, ``GET /v2/health/ready``, ``GET /v2/models/<name>/ready``;
- ``GET /v2/models/<name>``: the metadata: ``versions`` (the registry version, or the sha256's first 12 digits),
  ``platform`` "scikit-learn", ``inputs`` (one per feature column: datatype FP64 for a numeric column, BYTES for a
  categorical one, shape [-1]), ``outputs`` (the target; for a classifier also ``probability_<class>``) and
  ``parameters`` {sha256 of model.joblib, model_version, task, target, content_type "pd"};
- ``POST /v2/models/<name>/infer`` with ``Content-Type: application/json``.

Requests:
- a table (any model), one input per column, any order::

    {"parameters": {"content_type": "pd"},
     "inputs": [{"name": "size_sqm", "shape": [2], "datatype": "FP64", "data": [120.5, 80.0]},
                {"name": "neighbourhood", "shape": [2], "datatype": "BYTES", "data": ["Riverside", null]}]}

  Numeric columns take a numeric datatype (FP16/32/64, INT8-64, UINT8-64; not BOOL); categorical ones BYTES
  (text) or numbers and booleans, converted as in training (1 is the category "1"). ``null`` is a missing value.
  Shape [n] or [n, 1]. Columns the model card names but does not use (the target, excluded ones) are ignored,
  but for the excluded columns its ``sensitive_groups`` lists: sent, they are read for the per-group counts and
  held to the same shape rules (serving.decoding); ``content_type`` is optional;
- a tensor, for a model whose features are all numeric: one input of shape [n, k], k features in the order the
  metadata lists them, a numeric datatype (``content_type: "np"`` forces this reading);
- class probabilities: add ``"parameters": {"probabilities": true}`` (classifiers only), or ask for the
  ``probability_<class>`` outputs.
An ``id`` is echoed in the response; ``outputs`` (``[{"name": ...}]``) selects the outputs answered, in that
order; other request parameters are ignored.

Response: ``{"model_name", "model_version", "id", "parameters": {"content_type": "pd"}, "outputs": [...]}``, one
output named after the target (shape [n]; FP64 for a regressor, BYTES or INT64 as the labels are for a
classifier) and, when asked, ``probability_<class>`` (FP64) per class.

Errors: REST answers ``{"error": "<what is wrong>", "reason": "<CODE>"}`` with the status below; gRPC the matching
status code with details ``"<CODE>: <what is wrong>"``. The server keeps serving after any of them.

| status | reason | when |
|---|---|---|
| 400 | BAD_JSON | the body is not valid JSON (NaN and Infinity included: send null) |
| 415 | BAD_CONTENT_TYPE | the Content-Type of an infer request is not application/json |
| 413 | BODY_TOO_LARGE | the body is larger than ``max_body_bytes`` (default 8 MiB, gRPC's message limit too) |
| 413 | TOO_MANY_ROWS | more rows than ``max_rows`` (default 100000) |
| 431 | HEADERS_TOO_LARGE | the request line and headers take more than ``max_header_bytes`` (default 64 KiB) |
| 422 | BAD_REQUEST | no OIP request (no ``inputs``, an input lacking a field, raw gRPC contents not one per input) |
| 404 | MODEL_NOT_FOUND | no model of that name here (or a version other than the one served, in a versioned path) |
| 404/405 | NOT_FOUND/METHOD_NOT_ALLOWED | a path or method the server does not have |
| 400 | MISSING_FEATURES | a feature column is absent |
| 400 | UNKNOWN_INPUT | an input that is no column of the model |
| 400 | DUPLICATE_INPUT | two inputs with one name |
| 400 | BAD_DATATYPE | not an OIP datatype, or one the column cannot have (BYTES for a numeric column) |
| 400 | BAD_SHAPE | shape not [n]/[n, 1] (table) or [n, k] (tensor); data and shape disagree; ragged; unequal rows |
| 400 | BAD_VALUE | a value the column's datatype cannot hold ("abc" in FP64, a nested list, "") |
| 400 | TENSOR_NOT_NUMERIC | a tensor for a model with categorical columns |
| 400 | SCHEMA_VIOLATION | the data contract refuses a value (an unseen category: names column, values, check) |
| 400 | EMPTY | no rows |
| 400 | BAD_PARAMETER | ``probabilities`` not true/false, ``content_type`` not pd/np, an unknown or repeated output |
| 400 | NOT_FINITE | a prediction is not a finite number (inputs far outside the training data; a linear model) |
| 400 | NO_PROBABILITIES | probabilities asked of a regressor |
| 503 | NOT_READY | the model is not loaded |
| 501 | NOT_SUPPORTED | the model repository extension (load/unload): one model is served, fixed at start |
| 500 | INTERNAL | the server failed on a request it accepted (its fault, not the request's): its log has the trace |

Concurrency: the CPU-bound work (data contract, predict, signals) runs in one worker thread, so the event loop keeps
answering other requests and health checks during a long batch. For tree models (BATCH_IDENTICAL), requests that
arrive while the worker is busy are predicted together in one call: a tree model predicts each row from that row
alone, so every answer has the very bits it has alone (tests/serving/test_http.py checks it), and throughput under
concurrency rises several-fold. Linear models are predicted request by request: BLAS sums their dot products in an
order that depends on the batch.

Prometheus metrics (requests by outcome and reason, rows, time, predict calls, missing values, predictions,
feature drift, predictions per group of the sensitive columns): see serving.metrics.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
from kserve import Model
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

import model_bundle
from serving import metrics, oip
from serving.decoding import Contract, Decoded, decode
from serving.oip import RequestError
from serving.settings import Settings

logger = logging.getLogger(__name__)

# Estimators whose prediction for a row is computed from that row alone, in a fixed order (trees, summed tree by
# tree): predicting rows together gives each row the very bits it gets alone, so concurrent requests may share one
# predict call. Not linear models: BLAS sums a dot product in an order that depends on the batch, changing last bits.
BATCH_IDENTICAL = frozenset(
    {
        "HistGradientBoostingRegressor",
        "HistGradientBoostingClassifier",
        "RandomForestRegressor",
        "RandomForestClassifier",
    }
)
BATCH_ROWS = 4096  # the most rows predicted in one call when requests are put together


class BundleModel(Model):
    """A model bundle as a KServe model: digest-checked load, the data contract per request, OIP in and out."""

    def __init__(self, settings: Settings):
        super().__init__(settings.model_name)
        self.settings = settings
        self.bundle: model_bundle.Bundle | None = None
        self.contract: Contract | None = None
        self.schema_checks = model_bundle.schema.parse_request_checks(settings.schema_checks)
        self._signals: metrics.ModelSignals | None = None
        self._target_datatype = "FP64"
        # One thread runs the CPU-bound work (checks, predict, signals): the event loop stays free to answer other
        # requests and health checks, and the signals' state (the feature monitor's) is only ever touched by it.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")
        self._batching = False
        self._pending: list[tuple[Decoded, asyncio.Future]] = []
        self._draining = False
        self._drainer: asyncio.Task | None = None

    # -- loading ----------------------------------------------------------------------------------------------

    def load(self) -> bool:
        """Verifies (sha256 of model.joblib and of every document, before unpickling) and loads the bundle; raises
        model_bundle.BundleError naming the file and both digests when the bytes are not the trained ones."""
        bundle = model_bundle.load(self.settings.model_dir, expected_sha256=self.settings.model_sha256 or None)
        self.bundle = bundle
        self.contract = Contract(
            features=bundle.features,
            ignored=frozenset(bundle.non_feature_columns),
            classifier=bundle.task == model_bundle.CLASSIFICATION,
            max_rows=self.settings.max_rows,
            group_columns=frozenset(bundle.card.sensitive_groups).difference(bundle.feature_names),
        )
        self._signals = metrics.ModelSignals(self.name, bundle)
        if self.contract.classifier:
            kind = np.asarray(bundle.model.classes_).dtype.kind
            self._target_datatype = "INT64" if kind in "iu" else "BYTES"
        self._batching = _final_estimator(bundle.model) in BATCH_IDENTICAL
        logger.info(
            "loaded %s model for %r from %s (sha256 %s) as %r",
            bundle.task,
            bundle.card.target,
            self.settings.model_dir,
            bundle.card.sha256,
            self.name,
        )
        self.ready = True
        return True

    @property
    def version(self) -> str:
        return self.settings.model_version or self.bundle.card.sha256[:12]

    def stop(self):
        self._worker.shutdown(wait=False, cancel_futures=True)
        super().stop()

    # -- metadata ---------------------------------------------------------------------------------------------

    def metadata(self) -> dict:
        """OIP model metadata, with the data contract: each feature column and its datatype."""
        card = self.bundle.card
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": "scikit-learn",
            "inputs": self.get_input_types(),
            "outputs": self.get_output_types(),
            "parameters": {
                "sha256": card.sha256,
                "model_version": self.settings.model_version or None,
                "task": card.task,
                "target": card.target,
                "content_type": "pd",
            },
        }

    def get_input_types(self) -> list[dict]:
        return [
            {"name": f["name"], "datatype": "FP64" if f["type"] == model_bundle.NUMERIC else "BYTES", "shape": [-1]}
            for f in self.bundle.features
        ]

    def get_output_types(self) -> list[dict]:
        outputs = [{"name": self.bundle.card.target, "datatype": self._target_datatype, "shape": [-1]}]
        if self.contract.classifier:
            outputs += [
                {"name": f"{oip.PROBABILITY_PREFIX}{label}", "datatype": "FP64", "shape": [-1]}
                for label in self.bundle.card.classes
            ]
        return outputs

    # -- inference --------------------------------------------------------------------------------------------

    async def infer_json(self, body) -> dict:
        """Answers a parsed REST body (the REST route counts its errors)."""
        started = time.perf_counter()
        request = oip.from_json(body)
        outputs, rows = await self._infer(request)
        metrics.count_ok(self.name, rows, started)
        return {
            "model_name": self.name,
            "model_version": self.version,
            "id": request.id or str(uuid.uuid4()),
            "parameters": {"content_type": "pd"},
            "outputs": outputs,
        }

    async def predict(self, payload: InferRequest, headers=None, response_headers=None) -> InferResponse:
        """The KServe SDK's path (gRPC ModelInfer; its REST routes are shadowed, serving.app): the same checks and
        answers. Its refusals are counted where every gRPC refusal is (serving.app.count_grpc_refusals)."""
        started = time.perf_counter()
        if not self.ready:
            raise RequestError(f"model {self.name!r} is not loaded", "NOT_READY")
        request = oip.from_infer_request(payload)
        outputs, rows = await self._infer(request)
        metrics.count_ok(self.name, rows, started)
        return InferResponse(
            response_id=request.id or str(uuid.uuid4()),
            model_name=self.name,
            model_version=self.version,
            # As numpy arrays: the SDK sends them as raw_output_contents, the form gRPC clients (tritonclient) read.
            infer_outputs=[
                InferOutput(name=o["name"], shape=o["shape"], datatype=o["datatype"], data=_array(o)) for o in outputs
            ],
            parameters={"content_type": "pd"},
        )

    async def _infer(self, request: oip.Request) -> tuple[list[dict], int]:
        decoded = decode(request, self.contract)
        if request.outputs:  # before the model runs: a refused request is neither predicted nor monitored
            answered = [output["name"] for output in self.get_output_types()]
            unknown = [name for name in request.outputs if name not in answered]
            if unknown:
                raise RequestError(
                    f"requested output(s) {unknown} do not exist; this model answers {answered}", "BAD_PARAMETER"
                )
            if twice := oip.repeated(request.outputs):  # each repeat would copy the answer again
                raise RequestError(f"requested output(s) {twice} appear more than once; ask once", "BAD_PARAMETER")
        outputs = await self._run(decoded)
        if request.outputs:
            produced = {output["name"]: output for output in outputs}
            outputs = [produced[name] for name in request.outputs]
        return outputs, decoded.rows

    async def _run(self, decoded: Decoded) -> list[dict]:
        """The request's outputs, computed in the worker thread. For a model whose predictions of a row do not
        depend on the other rows predicted with it (BATCH_IDENTICAL), the requests that arrive while the worker is
        busy are predicted together in one call when it is free: no waiting when idle, far fewer predict calls
        under load, the same bits (tests/serving/test_http.py checks it against per-request predictions)."""
        loop = asyncio.get_running_loop()
        if not self._batching:
            [result] = await loop.run_in_executor(self._worker, self._predict_batch, [decoded])
            return _unwrap(result)
        future = loop.create_future()
        self._pending.append((decoded, future))
        if not self._draining:
            self._draining = True
            self._drainer = loop.create_task(self._drain())  # referenced: a task nobody holds may be collected
        return _unwrap(await future)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch, rows = [], 0
                while self._pending and (not batch or rows + self._pending[0][0].rows <= BATCH_ROWS):
                    batch.append(self._pending.pop(0))
                    rows += batch[-1][0].rows
                try:
                    results = await loop.run_in_executor(self._worker, self._predict_batch, [d for d, _ in batch])
                except BaseException as error:  # the executor itself failed: every waiting request learns it
                    results = [error] * len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._draining = False

    def _predict_batch(self, batch: list[Decoded]) -> list[list[dict] | BaseException]:
        """Each request's outputs (or its error), in the worker thread: the data contract per request, one predict
        for the requests that pass it, then each request's signals in arrival order."""
        results: list = [None] * len(batch)
        accepted = []
        for position, decoded in enumerate(batch):
            try:
                accepted.append((position, decoded, self._checked(decoded)))
            except RequestError as error:
                results[position] = error
        if not accepted:
            return results
        try:
            answers = self._predict_frames(accepted)
        except Exception:
            # Some request's rows broke the common call: predict each alone, so only that one fails (INTERNAL).
            answers = []
            for item in accepted:
                try:
                    answers += self._predict_frames([item])
                except Exception as error:
                    logger.exception("prediction failed")
                    answers.append(error)
        for (position, decoded, features), answer in zip(accepted, answers, strict=True):
            if isinstance(answer, BaseException):
                results[position] = answer
                continue
            predictions, probabilities = answer
            if (error := _not_finite(predictions, probabilities)) is not None:
                results[position] = error  # answered as null, it would pass for a missing value; never monitored
                continue
            results[position] = self._outputs(decoded, predictions, probabilities)
            self._signals.record(features, predictions, decoded.group_columns)
        return results

    def _checked(self, decoded: Decoded) -> pd.DataFrame:
        """The request's columns typed as the model types them, held to the data contract."""
        bundle = self.bundle
        try:
            features = model_bundle.coerce_columns(decoded.columns, bundle.features)
            # The same data contract validate_data holds datasets to (model_bundle.schema).
            model_bundle.check_request(bundle.schema, features, self.schema_checks)
        except model_bundle.SchemaViolation as error:
            raise RequestError(str(error), "SCHEMA_VIOLATION") from error
        except model_bundle.FeatureError as error:
            raise RequestError(str(error), "BAD_VALUE") from error
        return features

    def _predict_frames(self, accepted: list) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """One predict (and predict_proba, if any request asks) over the accepted requests' rows, split back.

        The rows go in typed as the model types its raw input (features.AS_NUMBER, AS_CATEGORY, which leave typed
        values as they are), so they are what ``model.predict(pd.DataFrame(raw columns))`` sees; and typed, the
        requests' rows can be put together (raw, a column's dtype would depend on the other requests' values)."""
        frames = [features for _, _, features in accepted]
        rows = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        predictions = np.asarray(self.bundle.predict(rows))
        metrics.count_predict_call(self.name)
        wanted = any(decoded.probabilities for _, decoded, _ in accepted)
        probabilities = self.bundle.predict_proba(rows) if wanted else None
        answers, start = [], 0
        for _, decoded, _ in accepted:
            end = start + decoded.rows
            asked = probabilities[start:end] if decoded.probabilities else None
            answers.append((predictions[start:end], asked))
            start = end
        return answers

    def _outputs(self, decoded: Decoded, predictions: np.ndarray, probabilities: np.ndarray | None) -> list[dict]:
        outputs = [{"name": self.bundle.card.target, "shape": [decoded.rows], "datatype": self._target_datatype}]
        if self._target_datatype == "FP64":
            outputs[0]["data"] = predictions.astype("float64").tolist()
        elif self._target_datatype == "INT64":
            outputs[0]["data"] = predictions.astype("int64").tolist()
        else:
            outputs[0]["data"] = [str(label) for label in predictions.tolist()]
        if probabilities is not None:
            outputs += [
                {
                    "name": f"{oip.PROBABILITY_PREFIX}{label}",
                    "shape": [decoded.rows],
                    "datatype": "FP64",
                    "data": probabilities[:, position].tolist(),
                }
                for position, label in enumerate(self.bundle.card.classes)
            ]
        return outputs

    # -- metrics ----------------------------------------------------------------------------------------------

    def count_error(self, reason: str) -> None:
        metrics.count_error(self.name, reason)


def _not_finite(predictions: np.ndarray, probabilities: np.ndarray | None) -> RequestError | None:
    """A refusal when a prediction (or a probability) is not a finite number: a linear model answers inf for inputs
    far outside its training data, which JSON can only write as null."""
    bad = np.zeros(len(predictions), dtype=bool)
    for values in (predictions, probabilities):
        if values is not None and values.dtype.kind == "f":
            bad |= ~np.isfinite(values.reshape(len(predictions), -1)).all(axis=1)
    if not bad.any():
        return None
    rows = np.flatnonzero(bad)
    return RequestError(
        f"the model's prediction for row(s) {rows[:10].tolist()}{' ...' if len(rows) > 10 else ''} is not a finite "
        "number: their values lie far outside the training data (the 'range' schema check refuses such rows, "
        "naming the column)",
        "NOT_FINITE",
    )


def _unwrap(result):
    if isinstance(result, BaseException):
        raise result
    return result


def _final_estimator(model) -> str:
    steps = getattr(model, "steps", None)
    return type(steps[-1][1] if steps else model).__name__


def _array(output: dict) -> np.ndarray:
    kind = {"FP64": "float64", "INT64": "int64"}.get(output["datatype"], object)
    return np.asarray(output["data"], dtype=kind)
