"""Reads a JSON Lines file (one JSON object per line, optionally gzipped) into an Arrow table: values keep their
JSON types, and a line that is not one JSON object is named.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa

from components.ingest_data import decoding
from components.ingest_data.errors import IngestError

JSON_TYPES = {"dict": "object", "list": "array", "str": "string", "int": "number", "float": "number", "bool": "boolean"}


def read_json_lines(path: Path, name: str) -> pa.Table:
    compression = "gzip" if decoding.is_gzip(path) else None
    scan = decoding.scan_text(
        path, name, compression, "utf-8-sig", explicit=False, hint="JSON Lines files must be UTF-8"
    )
    if scan.size == 0:
        raise IngestError(f"input file {name!r} is empty (0 bytes after gzip decompression)")
    if scan.complete and not scan.sample.strip():
        raise IngestError(f"input file {name!r} holds only blank lines, no JSON objects")
    try:
        frame = pd.read_json(
            path,
            lines=True,
            encoding="utf-8-sig",
            compression=compression,
            dtype=False,  # values keep their JSON types: the string "01234" is not turned into the number 1234
            convert_dates=False,  # nor strings into dates because of a column's name; CSV does not either
            precise_float=True,
        )
    except (ValueError, TypeError, AttributeError) as error:  # pandas fails with AttributeError on a non-object
        raise _json_lines_error(path, name, compression, scan) or IngestError(
            f"cannot read {name!r} as JSON Lines: {decoding.one_line(error)}"
        ) from error
    if not all(isinstance(column, str) for column in frame.columns):  # lines that are arrays, not objects
        raise _json_lines_error(path, name, compression, scan) or IngestError(
            f"cannot read {name!r} as JSON Lines: every line must be a JSON object"
        )
    return pa.Table.from_pandas(_mixed_columns_as_text(frame), preserve_index=False)


def _mixed_columns_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """A column whose JSON values are of several kinds (numbers and strings, say) cannot be stored in one Parquet
    column: its present values become their text, and validation then sees, and names, the mixture."""
    for column in frame.columns:
        values = frame[column]
        if values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) in ("mixed", "mixed-integer"):
            present = values.notna()
            frame[column] = values.where(~present, values[present].map(_json_text))
    return frame


def _json_text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


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
    return None
