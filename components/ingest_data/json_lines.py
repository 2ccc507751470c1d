"""Reads a JSON Lines file (one JSON object per line, optionally gzipped) as Arrow record batches, typed as one
``pandas.read_json(lines=True, dtype=False)`` of the whole file types them: values keep their JSON types, and a line
that is not one JSON object is named.

The file is read in blocks of about ``BLOCK_BYTES``, each cut after a line break and parsed by pandas. pandas types a
column by all its values, which the first block cannot foresee: integers with a value missing anywhere become
float64, booleans with one missing stay Python objects, a column of several kinds becomes their JSON text, and a key
first seen late is a column missing in every earlier row. So each block's columns are summed up (``Column``: the
kinds of their values, whether one is missing) and the batches get the types of the summary of the blocks read.
When a later block changes a type or adds a column, the rest of the file is only read to complete the summary, and
``Widened`` carries it to a second read that types every block as the whole file: at most two reads.
"""

from __future__ import annotations

import io
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
from pandas.io.json import ujson_loads

from components.ingest_data import decoding
from components.ingest_data.csv_format import BLOCK_BYTES, Widened
from components.ingest_data.errors import IngestError

JSON_TYPES = {"dict": "object", "list": "array", "str": "string", "int": "number", "float": "number", "bool": "boolean"}
UTF8_HINT = "JSON Lines files must be UTF-8"
TEXT = "text"  # a column of several kinds of values: each value's JSON text
# The kinds of the values in an object column, by pandas' infer_dtype; any other answer is a mixture.
INFERRED_KINDS = {
    "empty": frozenset(),
    "integer": frozenset({"int"}),
    "floating": frozenset({"float"}),
    "mixed-integer-float": frozenset({"int", "float"}),
    "boolean": frozenset({"bool"}),
    "string": frozenset({"str"}),
}
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
UINT64_MAX = 2**64 - 1  # the integers pandas' JSON parser reads: beyond them it stops with "Value is too big!"
DTYPE_KINDS = {"i": "int", "u": "uint", "f": "float", "b": "bool"}  # numpy dtype kind -> kind of values


@dataclass(frozen=True)
class Column:
    """What a column holds in the blocks read: the kinds of its values (``int``, ``negative`` integers too, ``uint``
    beyond int64, ``float``, ``bool``, ``str``, ``mixed``) and whether a value is missing (null, or the key absent
    from a line)."""

    kinds: frozenset[str] = frozenset()
    missing: bool = False

    def __or__(self, other: Column) -> Column:
        return Column(self.kinds | other.kinds, self.missing or other.missing)

    def type(self) -> tuple[str, pa.DataType]:
        """The column pandas makes of all these values: its dtype (or ``TEXT``) and its Arrow type."""
        kinds = self.kinds
        if not kinds:
            return "float64", pa.float64()  # no value at all: NaN
        if kinds <= {"int", "negative"} and not self.missing:
            return "int64", pa.int64()
        if kinds <= {"int", "uint"} and not self.missing:
            return "uint64", pa.uint64()
        if kinds <= {"int", "negative", "uint", "float"}:  # negative and beyond int64: no integer type holds both
            return "float64", pa.float64()
        if kinds == {"bool"}:
            return ("object" if self.missing else "bool"), pa.bool_()  # a missing value keeps Python booleans
        if kinds == {"str"}:
            return "object", pa.string()
        return TEXT, pa.string()  # several kinds, or objects and arrays (a Parquet column holds one kind)


def stream_json_lines(
    path: Path, name: str, columns: dict[str, Column] | None = None, block_bytes: int | None = None
) -> Iterator[pa.RecordBatch]:
    """The file's rows as record batches of about ``block_bytes`` of input each (default ``BLOCK_BYTES``), all of one
    schema: that of the first block, or of ``columns`` (from an earlier read that raised ``Widened``). Raises
    ``Widened`` with every block's columns when a later block needs other types or more columns."""
    compression = "gzip" if decoding.is_gzip(path) else None
    # Only the start is decoded up front; pandas decodes the blocks, and the first bad byte's exact offset is found
    # by a scan of the whole file only when a block does not decode.
    scan = decoding.scan_text(path, name, compression, "utf-8-sig", explicit=False, hint=UTF8_HINT, whole=False)
    if scan.size == 0:
        raise IngestError(f"input file {name!r} is empty (0 bytes after gzip decompression)")
    if scan.complete and not scan.sample.strip():
        raise IngestError(f"input file {name!r} holds only blank lines, no JSON objects")
    columns = dict(columns or {})
    types = {column: summary.type() for column, summary in columns.items()} if columns else None
    widened = False
    rows = 0
    encoding = "utf-8-sig"  # a byte-order mark is skipped at the start of the file only
    for block in _blocks(path, name, compression, block_bytes or BLOCK_BYTES):
        if block.strip():
            frame = _parse(path, name, compression, block, encoding)
            _summarise(columns, frame, rows)
            rows += len(frame)
            if types is None:
                types = {column: summary.type() for column, summary in columns.items()}
            widened = widened or any(summary.type() != types.get(column) for column, summary in columns.items())
            if not widened and types:  # a table without columns has no batches
                yield _batch(frame, types, block, encoding)
        encoding = "utf-8"
    if widened:
        raise Widened(name, columns)
    _check_names(path, name, compression, list(columns))


def _blocks(path: Path, name: str, compression: str | None, block_bytes: int) -> Iterator[bytes]:
    """The decompressed file in blocks of about ``block_bytes``, each ending after a line break (except maybe the
    last): pandas splits JSON Lines at line breaks only, and a line break is never part of a UTF-8 character."""
    pending = b""
    try:
        with pa.input_stream(str(path), compression=compression) as stream:
            while raw := stream.read(block_bytes):
                data = pending + raw
                cut = data.rfind(b"\n") + 1
                pending = data[cut:]
                if cut:
                    yield data[:cut]
    except (pa.ArrowException, OSError, EOFError, zlib.error) as error:
        _scan_whole(path, name, compression)  # names the corrupt gzip data as before streaming
        raise IngestError(f"cannot read {name!r}: {decoding.one_line(error)}") from error
    if pending:
        yield pending


def _scan_whole(path: Path, name: str, compression: str | None) -> decoding.Scan:
    return decoding.scan_text(path, name, compression, "utf-8-sig", explicit=False, hint=UTF8_HINT)


def _parse(path: Path, name: str, compression: str | None, block: bytes, encoding: str) -> pd.DataFrame:
    try:
        frame = pd.read_json(
            io.BytesIO(block),  # bytes, which pandas decodes once (a StringIO would hold 4 bytes a character)
            lines=True,
            encoding=encoding,
            dtype=False,  # values keep their JSON types: the string "01234" is not turned into the number 1234
            convert_dates=False,  # nor strings into dates because of a column's name; CSV does not either
            convert_axes=False,  # the column names are converted (or not) for the whole file, in _check_names
            precise_float=True,
        )
    except (ValueError, TypeError, AttributeError) as error:  # pandas fails with AttributeError on a non-object
        # (a byte that does not decode is a ValueError too: _refusal's scan names its offset)
        raise _refusal(path, name, compression, decoding.one_line(error)) from error
    if not all(isinstance(column, str) for column in frame.columns):  # lines that are arrays, not objects
        raise _refusal(path, name, compression, "every line must be a JSON object")
    return frame


def _check_names(path: Path, name: str, compression: str | None, names: list[str]) -> None:
    """pandas turns the column names into numbers (or dates) when all of the file's names look like them: refused,
    naming the keys (a column name is text)."""
    probe = pd.read_json(io.StringIO(json.dumps(dict.fromkeys(names))), lines=True, dtype=False, convert_dates=False)
    if not all(isinstance(column, str) for column in probe.columns):
        shown = names[:5] + ["..."] * (len(names) > 5)
        reason = f"every key of its objects looks like a number or a date ({shown}): give the columns text names"
        raise _refusal(path, name, compression, reason)


def _refusal(path: Path, name: str, compression: str | None, reason: str) -> IngestError:
    # The whole file is scanned first: a byte that does not decode is named before any line, as before streaming.
    scan = _scan_whole(path, name, compression)
    return _json_lines_error(path, name, compression, scan) or IngestError(
        f"cannot read {name!r} as JSON Lines: {reason}"
    )


def _summarise(columns: dict[str, Column], frame: pd.DataFrame, rows_before: int) -> None:
    """Adds the block ``frame`` to ``columns``, the summary of the blocks before it (``rows_before`` rows)."""
    for column, summary in columns.items():
        if column not in frame.columns:
            columns[column] = summary | Column(missing=True)
    for column in frame.columns:
        values = frame[column]
        missing = int(values.isna().sum())
        if missing == len(values):
            kinds = frozenset()
        elif values.dtype == object:
            inferred = pd.api.types.infer_dtype(values, skipna=True)
            kinds = INFERRED_KINDS.get(inferred, frozenset({"mixed"}))
            if inferred == "integer":  # Python integers no numpy type holds together: beyond int64 and negative
                present = values.dropna()
                beyond, negative = present.max() > INT64_MAX, present.min() < 0
                kinds = kinds | ({"uint"} if beyond else set()) | ({"negative"} if negative else set())
        else:
            kinds = frozenset({DTYPE_KINDS.get(values.dtype.kind, "mixed")})
            if values.dtype.kind == "i" and (values < 0).any():
                kinds |= {"negative"}
        block = Column(kinds, missing > 0 or (rows_before > 0 and column not in columns))
        columns[column] = columns.get(column, Column()) | block


def _batch(
    frame: pd.DataFrame, types: dict[str, tuple[str, pa.DataType]], block: bytes, encoding: str
) -> pa.RecordBatch:
    """The block's ``frame`` with the whole file's columns and types (``block``: its bytes, for values pandas
    changed)."""
    frame = frame.reindex(columns=list(types))  # a column the block lacks is missing in its rows
    raw = None
    for column, (dtype, _) in types.items():
        values = frame[column]
        if dtype == TEXT:
            if values.dtype.kind == "f" and values.notna().any():  # integers read as floats: 1.0 is not "1"
                if raw is None:  # the block parsed again as pandas parses it, without typing the columns
                    raw = ujson_loads(_as_json_array(block.decode(encoding)), precise_float=True)
                values = pd.Series([row.get(column) for row in raw], index=frame.index, dtype=object)
            frame[column] = _as_text(values.astype(object))
        elif values.dtype != dtype:
            frame[column] = values.astype(dtype)
    schema = pa.schema([(column, kind) for column, (_, kind) in types.items()])
    return pa.RecordBatch.from_pandas(frame, schema=schema, preserve_index=False)


def _as_json_array(text: str) -> str:
    """The block's lines as one JSON array, as pandas reads JSON Lines (blank lines skipped)."""
    return "[" + ",".join(line for line in (line.strip() for line in text.split("\n")) if line) + "]"


def _as_text(values: pd.Series) -> pd.Series:
    """A column whose JSON values are of several kinds (numbers and strings, say) cannot be stored in one Parquet
    column: its present values become their text, and validation names the mixture when at least half of them, but
    not all, read as numbers (a numeric column with typos), as for a CSV column; otherwise the column is categorical
    (numbers with some written as strings too: the text no longer says which were strings)."""
    present = values.notna()
    return values.where(~present, values[present].map(json_text))


def json_text(value) -> str:
    """A value as the dataset stores a nested or mixed one: text as it is, anything else its JSON (a Parquet list or
    struct may hold dates or decimals: their text)."""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _json_lines_error(path: Path, name: str, compression: str | None, scan: decoding.Scan) -> IngestError | None:
    """Names the first line that is not one JSON object (pandas' own errors name no line)."""
    with decoding.open_text(path, compression, "utf-8-sig") as stream:
        for number, text in enumerate(stream, start=1):
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as error:
                message = f"input file {name!r}: line {number} is not valid JSON ({error.msg} at column {error.colno})"
                if not scan.final_newline and not any(rest.strip() for rest in stream):
                    message += "; it is the last line and the file does not end with a line break: truncated?"
                return IngestError(message)
            if not isinstance(value, dict):
                kind = JSON_TYPES.get(type(value).__name__, "null")
                return IngestError(
                    f"input file {name!r}: line {number} is a JSON {kind}, not an object; each line must be one object"
                )
            for key, item in value.items():
                if (big := _beyond_64_bits(item)) is not None:
                    return IngestError(
                        f"input file {name!r}: line {number}, key {key!r}: the integer {big} is beyond 64 bits "
                        f"({INT64_MIN} to {UINT64_MAX}), which JSON Lines are read with; write it as a string "
                        f'("{big}") to keep every digit, or as a float ({float(big):.6e})'
                    )
    return None


def _beyond_64_bits(value) -> int | None:
    """The first integer in ``value`` (nested values too) that pandas' JSON parser cannot read."""
    if type(value) is int and not INT64_MIN <= value <= UINT64_MAX:
        return value
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return next((big for item in items if (big := _beyond_64_bits(item)) is not None), None)
