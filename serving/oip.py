"""Open Inference Protocol requests, checked and turned into the model's feature columns, cast to the types training
gave them (numbers as float64, a categorical column's booleans as their text; other categories are typed by
model_bundle.coerce_columns as the model types them); every client mistake becomes a ``RequestError`` with the
status, reason code and a message naming the problem (see ``serving.model_server``).

Plain logic over JSON values (REST) or the KServe SDK's ``InferRequest`` (gRPC), so both transports are held to the
same rules.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from grpc import StatusCode
from grpc_interceptor.exceptions import GrpcException

from model_bundle import NUMERIC

INTEGER_DATATYPES = frozenset(
    {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"},
)
FLOAT_DATATYPES = frozenset({"FP16", "FP32", "FP64"})
NUMBER_DATATYPES = INTEGER_DATATYPES | FLOAT_DATATYPES
DATATYPES = NUMBER_DATATYPES | {"BOOL", "BYTES"}
CONTENT_TYPES = ("pd", "np")
PROBABILITY_PREFIX = "probability_"

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
        self.message = message
        self.reason = reason
        self.http_status, status_code = STATUS.get(reason, (400, StatusCode.INVALID_ARGUMENT))
        super().__init__(details=f"{reason}: {message}", status_code=status_code)

    def __str__(self) -> str:
        return self.message

    def json(self) -> dict[str, str]:
        return {"error": self.message, "reason": self.reason}


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


@dataclass(frozen=True)
class Contract:
    """What a request is checked against: the model's features (name, type) and the columns it ignores."""

    features: list[dict[str, str]]
    ignored: frozenset[str]
    classifier: bool
    max_rows: int

    @property
    def names(self) -> list[str]:
        return [feature["name"] for feature in self.features]

    @property
    def categorical(self) -> list[str]:
        return [feature["name"] for feature in self.features if feature["type"] != NUMERIC]


@dataclass
class Decoded:
    columns: dict[str, Sequence]  # feature name -> values (float64 arrays for numeric columns, raw values else)
    rows: int
    probabilities: bool
    form: str  # "table" or "tensor"


def _bad(message: str, reason: str) -> RequestError:
    return RequestError(message, reason)


# ---------------------------------------------------------------------------------------------------------------
# transport -> Request


def from_json(body: Any) -> Request:
    """A parsed REST body as a Request; raises BAD_REQUEST (422) for JSON that is no OIP inference request."""
    example = '{"inputs": [{"name": ..., "shape": [n], "datatype": ..., "data": [...]}, ...]}'
    if not isinstance(body, dict):
        raise _bad(f"the request must be a JSON object {example}, got a {_json_type(body)}", "BAD_REQUEST")
    if "inputs" not in body:
        raise _bad(f"the request has no 'inputs': an inference request is {example}", "BAD_REQUEST")
    inputs = body["inputs"]
    if not isinstance(inputs, list):
        raise _bad(f"'inputs' must be a list of tensors, got a {_json_type(inputs)}", "BAD_REQUEST")
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise _bad(f"'id' must be a string, got a {_json_type(request_id)}", "BAD_REQUEST")
    parameters = body.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise _bad(f"'parameters' must be an object, got a {_json_type(parameters)}", "BAD_REQUEST")
    outputs = body.get("outputs")
    if outputs is not None and (
        not isinstance(outputs, list)
        or not all(isinstance(output, dict) and isinstance(output.get("name"), str) for output in outputs)
    ):
        raise _bad("'outputs' must be a list of objects with a 'name'", "BAD_REQUEST")
    return Request(
        inputs=[_input_from_json(position, entry) for position, entry in enumerate(inputs)],
        id=request_id,
        parameters=parameters or {},
        outputs=[output["name"] for output in outputs] if outputs else None,
    )


def _input_from_json(position: int, entry: Any) -> Input:
    if not isinstance(entry, dict):
        raise _bad(f"inputs[{position}] must be an object, got a {_json_type(entry)}", "BAD_REQUEST")
    label = f"inputs[{position}]" + (f" ({entry['name']!r})" if isinstance(entry.get("name"), str) else "")
    missing = [key for key in ("name", "shape", "datatype", "data") if key not in entry]
    if missing:
        raise _bad(f"{label} lacks {missing}: each input needs name, shape, datatype and data", "BAD_REQUEST")
    expected = {"name": str, "shape": list, "datatype": str, "data": list}
    for key, kind in expected.items():
        if not isinstance(entry[key], kind):
            raise _bad(f"{label}: '{key}' must be a {_json_name(kind)}, got a {_json_type(entry[key])}", "BAD_REQUEST")
    if not all(type(size) is int for size in entry["shape"]):
        raise _bad(f"{label}: 'shape' must be a list of integers, got {entry['shape']!r}", "BAD_REQUEST")
    if "parameters" in entry and entry["parameters"] is not None and not isinstance(entry["parameters"], dict):
        raise _bad(f"{label}: 'parameters' must be an object", "BAD_REQUEST")
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
                raise _bad(f"input {entry.name!r}: its raw contents cannot be read: {error}", "BAD_SHAPE") from error
        if entry.datatype == "BYTES":
            data = [value.decode("utf-8") if isinstance(value, bytes) else value for value in list(data)]
        inputs.append(Input(entry.name, [int(size) for size in entry.shape], entry.datatype, data))
    parameters = to_http_parameters(request.parameters) if request.parameters else {}
    outputs = [output.name for output in request.request_outputs] if request.request_outputs else None
    return Request(inputs=inputs, id=request.id or None, parameters=parameters, outputs=outputs)


# ---------------------------------------------------------------------------------------------------------------
# Request -> columns


def decode(request: Request, contract: Contract) -> Decoded:
    """The request's feature columns, checked against ``contract``; raises RequestError naming the problem."""
    content_type = request.parameters.get("content_type")
    if content_type is not None and content_type not in CONTENT_TYPES:
        raise _bad(
            f"parameter content_type must be one of {list(CONTENT_TYPES)}, got {content_type!r}", "BAD_PARAMETER"
        )
    probabilities = request.parameters.get("probabilities", False)
    if not isinstance(probabilities, bool):
        raise _bad(f"parameter probabilities must be true or false, got {probabilities!r}", "BAD_PARAMETER")
    if request.outputs and any(name.startswith(PROBABILITY_PREFIX) for name in request.outputs):
        probabilities = True
    if probabilities and not contract.classifier:
        raise _bad("probabilities are only available from a classifier; this model is a regressor", "NO_PROBABILITIES")
    if _is_tensor(request, contract, content_type):
        columns, rows = _tensor_columns(request, contract)
        return Decoded(columns, rows, probabilities, "tensor")
    columns, rows = _table_columns(request, contract)
    return Decoded(columns, rows, probabilities, "table")


def _is_tensor(request: Request, contract: Contract, content_type: str | None) -> bool:
    if content_type == "np":
        return True
    if content_type == "pd" or len(request.inputs) != 1:
        return False
    only = request.inputs[0]
    known = only.name in contract.names or only.name in contract.ignored
    return not known and len(only.shape) == 2


def _table_columns(request: Request, contract: Contract) -> tuple[dict[str, Sequence], int]:
    names = [entry.name for entry in request.inputs]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise _bad(f"input(s) {duplicated} appear more than once; send each column once", "DUPLICATE_INPUT")
    expected = contract.names
    unknown = [name for name in names if name not in expected and name not in contract.ignored]
    missing = [name for name in expected if name not in names]
    if unknown:
        also = f"; missing column(s) {missing}" if missing else ""
        raise _bad(
            f"unknown input(s) {unknown}: not a column of this model{also}; the model expects {expected}",
            "UNKNOWN_INPUT",
        )
    if missing:
        raise _bad(f"missing column(s) {missing}: the model expects {expected}", "MISSING_FEATURES")
    types = {feature["name"]: feature["type"] for feature in contract.features}
    features = [entry for entry in request.inputs if entry.name in types]
    for entry in features:
        _check_datatype(entry, types[entry.name])
    counts = {entry.name: _table_rows(entry) for entry in features}
    if len(set(counts.values())) > 1:
        raise _bad(
            f"inputs have different numbers of rows: {counts}; every column needs one value per row", "BAD_SHAPE"
        )
    rows = next(iter(counts.values()))
    _check_rows(rows, contract.max_rows)
    columns = {}
    for entry in features:
        values = _flat_column(entry, rows)
        _check_values(entry.name, entry.datatype, values)
        if types[entry.name] == NUMERIC:
            columns[entry.name] = _as_float(values)
        elif entry.datatype == "BOOL":
            # The text the model makes of a boolean category (features.AS_CATEGORY), ahead of it: plain strings
            # take the quick path of coerce_columns.
            columns[entry.name] = [None if value is None else str(bool(value)) for value in values]
        else:
            columns[entry.name] = values
    return columns, rows


def _check_datatype(entry: Input, feature_type: str) -> None:
    if entry.datatype not in DATATYPES:
        raise _bad(
            f"input {entry.name!r} has datatype {entry.datatype!r}, which is not an OIP datatype; use one of "
            f"{sorted(DATATYPES)}",
            "BAD_DATATYPE",
        )
    if feature_type == NUMERIC and entry.datatype == "BYTES":
        raise _bad(
            f"input {entry.name!r} is a numeric column; datatype BYTES (text) cannot be it: send numbers as FP64 "
            "(or another numeric datatype)",
            "BAD_DATATYPE",
        )


def _table_rows(entry: Input) -> int:
    shape = entry.shape
    if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)) or shape[0] < 0:
        raise _bad(
            f"input {entry.name!r} has shape {shape}; a table column has shape [n] or [n, 1] (one input per column)",
            "BAD_SHAPE",
        )
    if len(entry.data) != shape[0]:
        raise _bad(
            f"input {entry.name!r} has shape {shape} but {len(entry.data)} value(s); the data must hold {shape[0]}",
            "BAD_SHAPE",
        )
    return shape[0]


def _flat_column(entry: Input, rows: int) -> Sequence:
    data = entry.data
    if isinstance(data, np.ndarray) or len(entry.shape) == 1:
        return data
    # Shape [n, 1] may come nested, [[v], [v], ...] (OIP allows nested or flat data).
    kinds = set(map(type, data))
    if list not in kinds:
        return data
    if kinds != {list} or set(map(len, data)) != {1}:
        raise _bad(
            f"input {entry.name!r} has ragged data: shape {entry.shape} needs {rows} rows of 1 value", "BAD_SHAPE"
        )
    return [row[0] for row in data]


_ACCEPTED = {
    "number": {int, float, type(None)},
    "BOOL": {bool, type(None)},
    "BYTES": {str, type(None)},
}


def _check_values(name: str, datatype: str, values: Sequence) -> None:
    """Every value can be the datatype's (null is a missing value in any column)."""
    if isinstance(values, np.ndarray):
        if datatype in NUMBER_DATATYPES and values.dtype.kind not in "iuf":
            raise _bad(f"input {name!r} ({datatype}) holds non-numeric values", "BAD_VALUE")
        return
    kind = "number" if datatype in NUMBER_DATATYPES else datatype
    allowed = _ACCEPTED[kind]
    kinds = set(map(type, values))
    if kinds <= allowed and not (datatype in INTEGER_DATATYPES and float in kinds):
        return
    for row, value in enumerate(values):
        if type(value) not in allowed or (
            datatype in INTEGER_DATATYPES and isinstance(value, float) and not value.is_integer()
        ):
            if isinstance(value, list | dict):
                problem = f"a nested {_json_type(value)}"
            else:
                problem = f"{value!r}"
            wanted = {"number": "numbers", "BOOL": "true or false", "BYTES": "strings"}[kind]
            if datatype in INTEGER_DATATYPES:
                wanted = "whole numbers"
            raise _bad(
                f"input {name!r} ({datatype}) holds {problem} in row {row}; its values must be {wanted} or null",
                "BAD_VALUE",
            )


def _as_float(values: Sequence) -> np.ndarray:
    """A numeric column as the model types it (float64; null is NaN)."""
    if isinstance(values, np.ndarray):
        return values.astype("float64")
    return np.array(values, dtype="float64")


def _check_rows(rows: int, max_rows: int) -> None:
    if rows == 0:
        raise _bad("the request has no rows", "EMPTY")
    if rows > max_rows:
        raise _bad(f"the request has {rows} rows, more than the limit of {max_rows}", "TOO_MANY_ROWS")


def _tensor_columns(request: Request, contract: Contract) -> tuple[dict[str, np.ndarray], int]:
    if contract.categorical:
        raise _bad(
            f"a tensor carries numbers only, but this model has categorical column(s) {contract.categorical}; "
            'send one input per column (parameters.content_type "pd")',
            "TENSOR_NOT_NUMERIC",
        )
    names = contract.names
    if len(request.inputs) != 1:
        raise _bad(f"a tensor request has exactly one input, of shape [n, {len(names)}]", "BAD_SHAPE")
    entry = request.inputs[0]
    if entry.datatype not in NUMBER_DATATYPES:
        raise _bad(
            f"tensor input {entry.name!r} has datatype {entry.datatype!r}; a tensor takes a numeric datatype "
            f"({sorted(NUMBER_DATATYPES)})",
            "BAD_DATATYPE",
        )
    shape = entry.shape
    if len(shape) != 2 or shape[1] != len(names) or shape[0] < 0:
        raise _bad(
            f"tensor input {entry.name!r} has shape {shape}; it must be [n, {len(names)}]: one column per feature, "
            f"in the order of the model metadata {names}",
            "BAD_SHAPE",
        )
    rows, width = shape
    data = entry.data
    if not isinstance(data, np.ndarray) and data and isinstance(data[0], list):
        if len(data) != rows or set(map(type, data)) != {list} or set(map(len, data)) != {width}:
            raise _bad(
                f"tensor input {entry.name!r} has ragged data: shape {shape} needs {rows} rows of {width}", "BAD_SHAPE"
            )
        data = [value for row in data for value in row]
    if len(data) != rows * width:
        raise _bad(
            f"tensor input {entry.name!r} has shape {shape} but {len(data)} value(s); it must hold {rows} x {width}",
            "BAD_SHAPE",
        )
    _check_rows(rows, contract.max_rows)
    _check_values(entry.name, entry.datatype, data)
    array = _as_float(data).reshape(rows, width)
    return {name: array[:, position] for position, name in enumerate(names)}, rows


def _json_type(value: Any) -> str:
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
