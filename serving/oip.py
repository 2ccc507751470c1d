"""The Open Inference Protocol on the wire: the request types, every client mistake as a ``RequestError`` (status,
reason code, a message naming the problem), a request parsed from REST JSON or the KServe SDK's gRPC
``InferRequest`` into one ``Request``, and the client side's table request (``table_request``).

What a request means for a model (its columns checked and typed) is serving.decoding's; the server is
serving.model_server. Both transports are parsed into the same ``Request``, so they are held to the same rules.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from grpc import StatusCode
from grpc_interceptor.exceptions import GrpcException

INTEGER_DATATYPES = frozenset(
    {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"},
)
FLOAT_DATATYPES = frozenset({"FP16", "FP32", "FP64"})
NUMBER_DATATYPES = INTEGER_DATATYPES | FLOAT_DATATYPES
DATATYPES = NUMBER_DATATYPES | {"BOOL", "BYTES"}
CONTENT_TYPES = ("pd", "np")
PROBABILITY_PREFIX = "probability_"

# A refusal's message at most: it may quote the client's own values (a name, a category, a header), and gRPC drops
# details over 8 KB (its metadata limit), losing the reason with them.
MAX_MESSAGE_CHARS = 1000

# reason -> (HTTP status, gRPC status); every reason not listed is a 400 / INVALID_ARGUMENT.
STATUS = {
    "BAD_CONTENT_TYPE": (415, StatusCode.INVALID_ARGUMENT),
    "BODY_TOO_LARGE": (413, StatusCode.RESOURCE_EXHAUSTED),
    "TOO_MANY_ROWS": (413, StatusCode.RESOURCE_EXHAUSTED),
    "BAD_REQUEST": (422, StatusCode.INVALID_ARGUMENT),
    "MODEL_NOT_FOUND": (404, StatusCode.NOT_FOUND),
    "NOT_READY": (503, StatusCode.UNAVAILABLE),
    "NOT_SUPPORTED": (501, StatusCode.UNIMPLEMENTED),
    "INTERNAL": (500, StatusCode.INTERNAL),
}


class RequestError(GrpcException):
    """A request the server refuses: ``http_status`` and ``reason`` for REST, ``status_code`` and ``details``
    ("<REASON>: <message>") for gRPC (the KServe SDK's gRPC interceptor aborts with those)."""

    def __init__(self, message: str, reason: str):
        self.message = message = _bounded(message)
        self.reason = reason
        self.http_status, status_code = STATUS.get(reason, (400, StatusCode.INVALID_ARGUMENT))
        super().__init__(details=f"{reason}: {message}", status_code=status_code)

    def __str__(self) -> str:
        return self.message

    def json(self) -> dict[str, str]:
        return {"error": self.message, "reason": self.reason}


def repeated(names: list[str]) -> list[str]:
    """The names that appear more than once, sorted (a Counter: list.count per name made 40,000 inputs take 80 s)."""
    return sorted(name for name, count in Counter(names).items() if count > 1)


def _bounded(message: str) -> str:
    """``message`` within MAX_MESSAGE_CHARS: its middle cut (the start names the problem, the end the remedy)."""
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    head, tail = MAX_MESSAGE_CHARS * 2 // 3, MAX_MESSAGE_CHARS // 4
    return f"{message[:head]} [... {len(message) - head - tail:,} characters cut ...] {message[-tail:]}"


@dataclass
class Input:
    name: str
    shape: list[int]
    datatype: str
    data: list | np.ndarray


@dataclass
class Request:
    inputs: list[Input]
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    outputs: list[str] | None = None  # names of the outputs asked for, None for all


# ---------------------------------------------------------------------------------------------------------------
# transport -> Request


def from_json(body: Any) -> Request:
    """A parsed REST body as a Request; raises BAD_REQUEST (422) for JSON that is no OIP inference request."""
    example = '{"inputs": [{"name": ..., "shape": [n], "datatype": ..., "data": [...]}, ...]}'
    if not isinstance(body, dict):
        raise RequestError(f"the request must be a JSON object {example}, got a {json_type(body)}", "BAD_REQUEST")
    if "inputs" not in body:
        raise RequestError(f"the request has no 'inputs': an inference request is {example}", "BAD_REQUEST")
    inputs = body["inputs"]
    if not isinstance(inputs, list):
        raise RequestError(f"'inputs' must be a list of tensors, got a {json_type(inputs)}", "BAD_REQUEST")
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise RequestError(f"'id' must be a string, got a {json_type(request_id)}", "BAD_REQUEST")
    parameters = body.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise RequestError(f"'parameters' must be an object, got a {json_type(parameters)}", "BAD_REQUEST")
    outputs = body.get("outputs")
    if outputs is not None and (
        not isinstance(outputs, list)
        or not all(isinstance(output, dict) and isinstance(output.get("name"), str) for output in outputs)
    ):
        raise RequestError("'outputs' must be a list of objects with a 'name'", "BAD_REQUEST")
    return Request(
        inputs=[_input_from_json(position, entry) for position, entry in enumerate(inputs)],
        id=request_id,
        parameters=parameters or {},
        outputs=[output["name"] for output in outputs] if outputs else None,
    )


def _input_from_json(position: int, entry: Any) -> Input:
    if not isinstance(entry, dict):
        raise RequestError(f"inputs[{position}] must be an object, got a {json_type(entry)}", "BAD_REQUEST")
    label = f"inputs[{position}]" + (f" ({entry['name']!r})" if isinstance(entry.get("name"), str) else "")
    missing = [key for key in ("name", "shape", "datatype", "data") if key not in entry]
    if missing:
        raise RequestError(f"{label} lacks {missing}: each input needs name, shape, datatype and data", "BAD_REQUEST")
    expected = {"name": str, "shape": list, "datatype": str, "data": list}
    for key, kind in expected.items():
        if not isinstance(entry[key], kind):
            raise RequestError(
                f"{label}: '{key}' must be a {_json_name(kind)}, got a {json_type(entry[key])}", "BAD_REQUEST"
            )
    if not all(type(size) is int for size in entry["shape"]):
        raise RequestError(f"{label}: 'shape' must be a list of integers, got {entry['shape']!r}", "BAD_REQUEST")
    if "parameters" in entry and entry["parameters"] is not None and not isinstance(entry["parameters"], dict):
        raise RequestError(f"{label}: 'parameters' must be an object", "BAD_REQUEST")
    return Input(entry["name"], entry["shape"], entry["datatype"], entry["data"])


def from_infer_request(request) -> Request:
    """A KServe SDK ``InferRequest`` (what its gRPC servicer makes of a ModelInferRequest) as a Request."""
    from kserve.protocol.infer_type import to_http_parameters

    inputs = []
    for entry in request.inputs:
        data = entry.data
        if data is None or entry._raw_data is not None:  # raw_input_contents: the client's usual gRPC form
            try:
                data = entry.as_numpy().ravel()
            except Exception as error:  # the SDK's decoding of raw bytes: bad sizes or datatypes
                raise RequestError(
                    f"input {entry.name!r}: its raw contents cannot be read: {error}", "BAD_SHAPE"
                ) from error
        if entry.datatype == "BYTES":
            data = _texts(entry.name, list(data))
        inputs.append(Input(entry.name, [int(size) for size in entry.shape], entry.datatype, data))
    parameters = to_http_parameters(request.parameters) if request.parameters else {}
    outputs = [output.name for output in request.request_outputs] if request.request_outputs else None
    return Request(inputs=inputs, id=request.id or None, parameters=parameters, outputs=outputs)


def _texts(name: str, values: list) -> list:
    """A BYTES input's values as text: raw bytes (gRPC) must be UTF-8, as JSON text always is."""
    texts = []
    for row, value in enumerate(values):
        try:
            texts.append(value.decode("utf-8") if isinstance(value, bytes) else value)
        except UnicodeDecodeError as error:
            raise RequestError(
                f"input {name!r} (BYTES) holds {value[:20]!r} in row {row}, which is not UTF-8 text "
                f"(byte {value[error.start]:#04x} at offset {error.start})",
                "BAD_VALUE",
            ) from error
    return texts


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "list", dict: "object"}.get(type(value), type(value).__name__)


def _json_name(kind: type) -> str:
    return {str: "string", list: "list", dict: "object"}[kind]


# -- the client side: what callers of the server send ----------------------------------------------------


def table_request(rows: pd.DataFrame) -> dict:
    """The client side: ``rows`` as an OIP table request (``content_type: pd``), one input per column, shape [n],
    its datatype taken from the values (FP64 for a column with none), missing values as null and floats at full
    precision (json writes the shortest exact repr). What the deploy step's smoke test, ``make demo``'s examples
    and monitor_demo send."""
    return {
        "parameters": {"content_type": "pd"},
        "inputs": [_column_input(str(name), rows[name]) for name in rows.columns],
    }


def _column_input(name: str, column: pd.Series) -> dict:
    missing = column.isna().to_numpy()
    values = [None if absent else value for value, absent in zip(column.tolist(), missing, strict=True)]
    datatype = _datatype(column.dtype, [value for value in values if value is not None])
    convert = {"BOOL": bool, "INT64": int, "UINT64": int, "FP64": float, "BYTES": str}[datatype]
    return {
        "name": name,
        "shape": [len(values)],
        "datatype": datatype,
        "data": [None if value is None else convert(value) for value in values],
    }


def _datatype(dtype, present: list) -> str:
    kind = getattr(dtype, "kind", "O")
    if not present:
        return "FP64"  # all missing: null is a missing value of a number and of a category alike
    if kind in "biuf":
        return {"b": "BOOL", "i": "INT64", "u": "UINT64", "f": "FP64"}[kind]
    # object, string and category columns: what their values are (a category may hold numbers).
    if all(isinstance(value, bool | np.bool_) for value in present):
        return "BOOL"
    if all(isinstance(value, int | np.integer) and not isinstance(value, bool) for value in present):
        return "INT64"
    if all(
        isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool) for value in present
    ):
        return "FP64"
    return "BYTES"


def table_body(rows: pd.DataFrame) -> bytes:
    return json.dumps(table_request(rows), allow_nan=False).encode()
