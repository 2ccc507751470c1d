"""An OIP request read as a model's feature columns: checked against what the model takes (its ``Contract``: features,
ignored columns, row limit) as a table or a tensor, and cast to the types training gave them (numbers as float64,
a categorical column's booleans as their text; other categories are typed by model_bundle.coerce_columns as the
model types them). Every refusal is a ``RequestError`` naming the input and the problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from model_bundle import NUMERIC
from serving.oip import (
    CONTENT_TYPES,
    DATATYPES,
    INTEGER_DATATYPES,
    NUMBER_DATATYPES,
    PROBABILITY_PREFIX,
    Input,
    Request,
    RequestError,
    json_type,
    repeated,
)


@dataclass(frozen=True)
class Contract:
    """What a request is checked against: the model's features (name, type), the columns it ignores, and of these
    the ones read for the per-group counts (an excluded column the card lists in ``sensitive_groups``)."""

    features: list[dict[str, str]]
    ignored: frozenset[str]
    classifier: bool
    max_rows: int
    group_columns: frozenset[str] = frozenset()

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
    group_columns: dict[str, Sequence] = field(default_factory=dict)  # Contract.group_columns sent: raw values


def decode(request: Request, contract: Contract) -> Decoded:
    """The request's feature columns, checked against ``contract``; raises RequestError naming the problem."""
    content_type = request.parameters.get("content_type")
    if content_type is not None and content_type not in CONTENT_TYPES:
        raise RequestError(
            f"parameter content_type must be one of {list(CONTENT_TYPES)}, got {content_type!r}", "BAD_PARAMETER"
        )
    probabilities = request.parameters.get("probabilities", False)
    if not isinstance(probabilities, bool):
        raise RequestError(f"parameter probabilities must be true or false, got {probabilities!r}", "BAD_PARAMETER")
    if request.outputs and any(name.startswith(PROBABILITY_PREFIX) for name in request.outputs):
        probabilities = True
    if probabilities and not contract.classifier:
        raise RequestError(
            "probabilities are only available from a classifier; this model is a regressor", "NO_PROBABILITIES"
        )
    if _is_tensor(request, contract, content_type):
        columns, rows = _tensor_columns(request, contract)
        return Decoded(columns, rows, probabilities, "tensor")
    columns, rows, group_columns = _table_columns(request, contract)
    return Decoded(columns, rows, probabilities, "table", group_columns)


def _is_tensor(request: Request, contract: Contract, content_type: str | None) -> bool:
    if content_type == "np":
        return True
    if content_type == "pd" or len(request.inputs) != 1:
        return False
    only = request.inputs[0]
    known = only.name in contract.names or only.name in contract.ignored
    return not known and len(only.shape) == 2


def _table_columns(request: Request, contract: Contract) -> tuple[dict[str, Sequence], int, dict[str, Sequence]]:
    names = [entry.name for entry in request.inputs]
    duplicated = repeated(names)
    if duplicated:
        raise RequestError(f"input(s) {duplicated} appear more than once; send each column once", "DUPLICATE_INPUT")
    expected, known, sent = contract.names, {*contract.names, *contract.ignored}, set(names)
    unknown = [name for name in names if name not in known]
    missing = [name for name in expected if name not in sent]
    if unknown:
        also = f"; missing column(s) {missing}" if missing else ""
        raise RequestError(
            f"unknown input(s) {unknown}: not a column of this model{also}; the model expects {expected}",
            "UNKNOWN_INPUT",
        )
    if missing:
        raise RequestError(f"missing column(s) {missing}: the model expects {expected}", "MISSING_FEATURES")
    types = {feature["name"]: feature["type"] for feature in contract.features}
    features = [entry for entry in request.inputs if entry.name in types]
    grouped = [entry for entry in request.inputs if entry.name in contract.group_columns]
    for entry in features:
        _check_datatype(entry, types[entry.name])
    for entry in grouped:
        _check_datatype(entry, "")
    counts = {entry.name: _table_rows(entry) for entry in [*features, *grouped]}
    if len(set(counts.values())) > 1:
        raise RequestError(
            f"inputs have different numbers of rows: {counts}; every column needs one value per row", "BAD_SHAPE"
        )
    rows = next(iter(counts.values()))
    _check_rows(rows, contract.max_rows)
    group_columns = {}
    for entry in grouped:
        values = _flat_column(entry, rows)
        _check_values(entry.name, entry.datatype, values)
        group_columns[entry.name] = values
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
    return columns, rows, group_columns


def _check_datatype(entry: Input, feature_type: str) -> None:
    if entry.datatype not in DATATYPES:
        raise RequestError(
            f"input {entry.name!r} has datatype {entry.datatype!r}, which is not an OIP datatype; use one of "
            f"{sorted(DATATYPES)}",
            "BAD_DATATYPE",
        )
    if feature_type == NUMERIC and entry.datatype in ("BYTES", "BOOL"):
        # Booleans too: the model file refuses them in a numeric column (features.coerce_columns), so must this.
        what = {"BYTES": "BYTES (text)", "BOOL": "BOOL (true/false)"}[entry.datatype]
        raise RequestError(
            f"input {entry.name!r} is a numeric column; datatype {what} cannot be it: send numbers as FP64 "
            "(or another numeric datatype)",
            "BAD_DATATYPE",
        )


def _table_rows(entry: Input) -> int:
    shape = entry.shape
    if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)) or shape[0] < 0:
        raise RequestError(
            f"input {entry.name!r} has shape {shape}; a table column has shape [n] or [n, 1] (one input per column)",
            "BAD_SHAPE",
        )
    if len(entry.data) != shape[0]:
        raise RequestError(
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
        raise RequestError(
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
            raise RequestError(f"input {name!r} ({datatype}) holds non-numeric values", "BAD_VALUE")
        return
    kind = "number" if datatype in NUMBER_DATATYPES else datatype
    allowed = _ACCEPTED[kind]
    kinds = set(map(type, values))
    if not kinds <= allowed or (datatype in INTEGER_DATATYPES and float in kinds):
        _refuse_first_value(name, datatype, kind, allowed, values)
    if datatype in NUMBER_DATATYPES and datatype != "FP64":  # JSON numbers are doubles: FP64 holds every one
        _check_range(name, datatype, values)


def _refuse_first_value(name: str, datatype: str, kind: str, allowed: set[type], values: Sequence) -> None:
    for row, value in enumerate(values):
        if type(value) not in allowed or (
            datatype in INTEGER_DATATYPES and isinstance(value, float) and not value.is_integer()
        ):
            if isinstance(value, list | dict):
                problem = f"a nested {json_type(value)}"
            else:
                problem = f"{value!r}"
            wanted = {"number": "numbers", "BOOL": "true or false", "BYTES": "strings"}[kind]
            if datatype in INTEGER_DATATYPES:
                wanted = "whole numbers"
            raise RequestError(
                f"input {name!r} ({datatype}) holds {problem} in row {row}; its values must be {wanted} or null",
                "BAD_VALUE",
            )


def _check_range(name: str, datatype: str, values: Sequence) -> None:
    """Numbers within the datatype's range: UINT8 -5 or FP16 70000 is no such value, and the client that sent it has
    a bug the prediction would hide (a binary payload cannot hold it; the JSON list is held to the same rule)."""
    numbers = [value for value in values if value is not None and value == value]  # NaN (gRPC): missing, as null
    if not numbers:
        return
    dtype = np.dtype(datatype.lower().replace("fp", "float"))
    limits = np.iinfo(dtype) if dtype.kind in "iu" else np.finfo(dtype)
    kind = int if dtype.kind in "iu" else float  # Python numbers: a float16 bound would overflow in the comparison
    low, high = kind(limits.min), kind(limits.max)
    if low <= min(numbers) and max(numbers) <= high:
        return
    row, value = next(
        (row, value)
        for row, value in enumerate(values)
        if value is not None and value == value and not low <= value <= high
    )
    raise RequestError(
        f"input {name!r} ({datatype}) holds {value!r} in row {row}; {datatype} values lie between {low} and {high}",
        "BAD_VALUE",
    )


def _as_float(values: Sequence) -> np.ndarray:
    """A numeric column as the model types it (float64; null is NaN)."""
    if isinstance(values, np.ndarray):
        return values.astype("float64")
    return np.array(values, dtype="float64")


def _check_rows(rows: int, max_rows: int) -> None:
    if rows == 0:
        raise RequestError("the request has no rows", "EMPTY")
    if rows > max_rows:
        raise RequestError(f"the request has {rows} rows, more than the limit of {max_rows}", "TOO_MANY_ROWS")


def _tensor_columns(request: Request, contract: Contract) -> tuple[dict[str, np.ndarray], int]:
    if contract.categorical:
        raise RequestError(
            f"a tensor carries numbers only, but this model has categorical column(s) {contract.categorical}; "
            'send one input per column (parameters.content_type "pd")',
            "TENSOR_NOT_NUMERIC",
        )
    names = contract.names
    if len(request.inputs) != 1:
        raise RequestError(f"a tensor request has exactly one input, of shape [n, {len(names)}]", "BAD_SHAPE")
    entry = request.inputs[0]
    if entry.datatype not in NUMBER_DATATYPES:
        raise RequestError(
            f"tensor input {entry.name!r} has datatype {entry.datatype!r}; a tensor takes a numeric datatype "
            f"({sorted(NUMBER_DATATYPES)})",
            "BAD_DATATYPE",
        )
    shape = entry.shape
    if len(shape) != 2 or shape[1] != len(names) or shape[0] < 0:
        raise RequestError(
            f"tensor input {entry.name!r} has shape {shape}; it must be [n, {len(names)}]: one column per feature, "
            f"in the order of the model metadata {names}",
            "BAD_SHAPE",
        )
    rows, width = shape
    data = entry.data
    if not isinstance(data, np.ndarray) and data and isinstance(data[0], list):
        if len(data) != rows or set(map(type, data)) != {list} or set(map(len, data)) != {width}:
            raise RequestError(
                f"tensor input {entry.name!r} has ragged data: shape {shape} needs {rows} rows of {width}", "BAD_SHAPE"
            )
        data = [value for row in data for value in row]
    if len(data) != rows * width:
        raise RequestError(
            f"tensor input {entry.name!r} has shape {shape} but {len(data)} value(s); it must hold {rows} x {width}",
            "BAD_SHAPE",
        )
    _check_rows(rows, contract.max_rows)
    _check_values(entry.name, entry.datatype, data)
    array = _as_float(data).reshape(rows, width)
    return {name: array[:, position] for position, name in enumerate(names)}, rows
