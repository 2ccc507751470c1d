"""Reads one local file into an Arrow table; the format comes from the file name's extension.

CSV is parsed by pyarrow (multi-threaded, column types fixed by one inference over the whole file), with the
conversions ``pandas.read_csv`` makes by default: the same missing-value tokens (``NA``, ``null``, ``None``, an
empty field, ...), ``True``/``False`` as booleans, whole numbers as integers, and dates and times kept as text.
What pandas would repair silently is refused instead, naming the line: a row with another number of fields than
the header (a truncated last line), a value whose quote never closes, repeated header names. Bytes the encoding
cannot decode are reported with their exact offset: the file's first characters are decoded up front (for the
header and delimiter detection) and, when the parser finds invalid text, the whole file is scanned for the
first bad byte.

Gzip is recognised by its magic bytes, not only by a ``.gz`` extension: an HTTP server may already have
decompressed a ``.csv.gz``.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import itertools
import json
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from components.ingest_data.errors import IngestError

EXTENSIONS = {  # lower-case file name ending -> format
    ".csv": "csv",
    ".csv.gz": "csv",
    ".tsv": "tsv",
    ".tsv.gz": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".jsonl.gz": "jsonl",
    ".ndjson": "jsonl",
    ".ndjson.gz": "jsonl",
}
CSV_DELIMITERS = ",;\t|"  # what delimiter detection chooses among
NAMED_DELIMITERS = {"tab": "\t", "\\t": "\t"}  # a tab is hard to type into a pipeline parameter
SNIFF_CHARS = 64 * 1024  # decoded characters csv.Sniffer looks at
SAMPLE_CHARS = 1024 * 1024  # decoded characters kept for the header; a longer first line is refused
READ_CHUNK = 1024 * 1024
CSV_BLOCK_BYTES = 16 * 1024 * 1024  # bytes pyarrow parses per block and thread
# pandas.read_csv's default missing-value tokens and booleans, so a CSV file reads as users expect from pandas.
PANDAS_NA_VALUES = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA",
    "NULL", "NaN", "None", "n/a", "nan", "null",
]  # fmt: skip
PANDAS_TRUE_VALUES = ["True", "TRUE", "true"]
PANDAS_FALSE_VALUES = ["False", "FALSE", "false"]
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
UTF8_BOM = codecs.BOM_UTF8
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
CSV_ENCODING_HINT = "if the file uses another encoding, set csv_encoding (e.g. 'latin-1' or 'cp1252')"
JSON_TYPES = {"dict": "object", "list": "array", "str": "string", "int": "number", "float": "number", "bool": "boolean"}


@dataclass(frozen=True)
class CsvOptions:
    """How CSV files are split and decoded. Build it with ``CsvOptions.parse``, which validates the options.

    ``delimiter``: one character, or empty to detect it among ``, ; TAB |`` (a ``.tsv`` file is tab-separated).
    ``encoding``: a Python codec name, or empty for UTF-8 (a byte-order mark is allowed either way for UTF-8).
    """

    delimiter: str = ""
    encoding: str = ""

    @classmethod
    def parse(cls, delimiter: str = "", encoding: str = "") -> CsvOptions:
        return cls(delimiter=_delimiter_option(delimiter), encoding=_encoding_option(encoding))

    @property
    def codec(self) -> str:
        return self.encoding or "utf-8-sig"


def _delimiter_option(value: str) -> str:
    if value == "":
        return ""
    delimiter = NAMED_DELIMITERS.get(value.lower(), value)
    if len(delimiter) != 1 or delimiter in '"\r\n':
        raise IngestError(
            f"csv_delimiter must be one character other than a quote or line break (or 'tab'), got {value!r}"
        )
    return delimiter


def _encoding_option(value: str) -> str:
    if not value.strip():
        return ""
    try:
        name = codecs.lookup(value.strip()).name
        b"x".decode(name, "ignore")  # refuses codecs that are not text encodings, such as base64
    except LookupError:
        raise IngestError(
            f"csv_encoding {value!r} is not a text encoding Python knows (e.g. 'utf-8', 'latin-1', 'cp1252')"
        ) from None
    return "utf-8-sig" if name in ("utf-8", "utf-8-sig") else name


def suffix_of(filename: str) -> str | None:
    """The supported extension ``filename`` ends with (``.csv.gz`` before ``.gz``), or None."""
    lower = filename.lower()
    return next((ext for ext in sorted(EXTENSIONS, key=len, reverse=True) if lower.endswith(ext)), None)


def unsupported_extension(name: str) -> IngestError:
    return IngestError(f"input file {name!r} has unsupported extension; supported: {sorted(EXTENSIONS)}")


def read_file(path: Path, name: str | None = None, options: CsvOptions | None = None) -> pa.Table:
    """Reads the local file ``path``; errors call it ``name`` (the path itself, a ``gs://`` URI or a URL)."""
    name = str(path) if name is None else name
    options = options or CsvOptions()
    if not path.exists():
        raise IngestError(f"input file {name!r} does not exist")
    if not path.is_file():
        raise IngestError(f"input path {name!r} is not a file")
    if path.stat().st_size == 0:
        raise IngestError(f"input file {name!r} is empty (0 bytes)")
    suffix = suffix_of(path.name)
    if suffix is None:
        raise unsupported_extension(name)
    file_format = EXTENSIONS[suffix]
    if file_format in ("csv", "tsv"):
        table = _read_csv(path, name, options, default_delimiter="\t" if file_format == "tsv" else "")
    elif file_format == "parquet":
        table = _read_parquet(path, name)
    else:
        table = _read_json_lines(path, name)
    names = table.column_names
    duplicated = sorted({column for column in names if names.count(column) > 1})
    if duplicated:
        raise IngestError(f"input file {name!r} has duplicate column names {duplicated}; names must be unique")
    if table.num_columns == 0:
        raise IngestError(f"input file {name!r} has no columns")
    if table.num_rows == 0:
        what = "a header" if file_format in ("csv", "tsv") else "columns"
        raise IngestError(f"input file {name!r} has {what} but no data rows")
    return table


# --- CSV ---------------------------------------------------------------------------------------------------------


def _read_csv(path: Path, name: str, options: CsvOptions, default_delimiter: str) -> pa.Table:
    compression = "gzip" if _is_gzip(path) else None
    # UTF-8 is checked by the parser and only scanned for an exact offset when it fails; another encoding is
    # decoded by Python anyway, so the file is scanned up front.
    whole = options.codec != "utf-8-sig"
    scan = _scan_text(
        path, name, compression, options.codec, explicit=bool(options.encoding), hint=CSV_ENCODING_HINT, whole=whole
    )
    if scan.size == 0:
        raise IngestError(f"input file {name!r} is empty (0 bytes after gzip decompression)")
    delimiter = options.delimiter or default_delimiter or _sniff(scan)
    header = _header(scan, name, delimiter)
    repeated = sorted({column for column in header if header.count(column) > 1})
    if repeated:
        listed = ", ".join(f"{column!r} ({header.count(column)} times)" for column in repeated)
        raise IngestError(
            f"input file {name!r} repeats column name(s) in its header: {listed}; column names must be unique"
        )
    table = _parse_csv(path, name, compression, options, delimiter, len(header), scan)
    _check_quotes_close(path, name, compression, options.codec, delimiter)
    return table


def _parse_csv(
    path: Path, name: str, compression: str | None, options: CsvOptions, delimiter: str, width: int, scan: _Scan
) -> pa.Table:
    """The whole file through pyarrow's CSV reader; every row must have ``width`` fields."""
    invalid: list[pa_csv.InvalidRow] = []

    def stop_at_first(row: pa_csv.InvalidRow) -> str:
        invalid.append(row)
        return "error"

    codec = options.codec
    read_options = pa_csv.ReadOptions(encoding="utf8" if codec == "utf-8-sig" else codec, block_size=CSV_BLOCK_BYTES)
    parse_options = pa_csv.ParseOptions(delimiter=delimiter, newlines_in_values=True, invalid_row_handler=stop_at_first)
    convert_options = pa_csv.ConvertOptions(
        null_values=PANDAS_NA_VALUES,
        strings_can_be_null=True,
        true_values=PANDAS_TRUE_VALUES,
        false_values=PANDAS_FALSE_VALUES,
    )
    try:
        with pa.input_stream(str(path), compression=compression) as stream:
            table = pa_csv.read_csv(stream, read_options, parse_options, convert_options)
        # Like pandas, dates and times stay text (pyarrow would parse ISO ones): read those columns again as strings.
        temporal = [field.name for field in table.schema if pa.types.is_temporal(field.type)]
        if temporal:
            as_text = pa_csv.ConvertOptions(
                include_columns=temporal,
                column_types=dict.fromkeys(temporal, pa.string()),
                null_values=PANDAS_NA_VALUES,
                strings_can_be_null=True,
            )
            with pa.input_stream(str(path), compression=compression) as stream:
                texts = pa_csv.read_csv(stream, read_options, parse_options, as_text)
            for column in temporal:
                table = table.set_column(table.schema.get_field_index(column), column, texts[column])
    except (pa.ArrowException, OSError, EOFError, zlib.error) as error:
        if invalid:
            raise _row_shape_error(path, name, compression, codec, delimiter, width, invalid[0], scan) from None
        if not scan.whole:  # the parser met invalid UTF-8: name the first bad byte's offset and line
            _scan_text(path, name, compression, codec, explicit=bool(options.encoding), hint=CSV_ENCODING_HINT)
        if compression:
            raise IngestError(f"cannot read {name!r}: its gzip data is corrupt or truncated ({error})") from error
        raise IngestError(f"cannot read {name!r} as csv: {_one_line(error)}") from error
    # A column without any value is all floats' NaN in pandas; pyarrow types it null.
    for position, column in enumerate(table.schema):
        if pa.types.is_null(column.type):
            table = table.set_column(position, column.name, table.column(position).cast(pa.float64()))
    return table


def _check_quotes_close(path: Path, name: str, compression: str | None, codec: str, delimiter: str) -> None:
    """pyarrow takes a quote that never closes as a value running to the end of the file; pandas calls it "EOF
    inside string". In valid CSV quotes come in pairs, so only a file with an odd number of quote characters is
    read again by the strict csv module, which tells a stray quote inside a value from one that never closes."""
    quotes = 0
    with _open_binary(path, compression) as stream:
        for chunk in iter(lambda: stream.read(READ_CHUNK * 16), b""):
            quotes += chunk.count(b'"')
    if quotes % 2 == 0:
        return
    with _open_text(path, compression, codec) as stream:
        reader = csv.reader(stream, delimiter=delimiter, strict=True)
        start = 1  # the line the record being read starts on
        try:
            for _ in reader:
                start = reader.line_num + 1
        except csv.Error as error:
            raise IngestError(
                f"input file {name!r}: the quoted value in the record starting on line {start} never closes "
                f"({error}); the file ends inside it, so it looks truncated"
            ) from None


@dataclass(frozen=True)
class _Scan:
    sample: str  # the first SAMPLE_CHARS decoded characters (without a byte-order mark)
    complete: bool  # the sample is the whole file
    size: int  # bytes after decompression (of the part scanned, unless ``whole``)
    final_newline: bool  # the file ends with a line break (known when ``whole`` or ``complete``)
    whole: bool  # the whole file was decoded, so every byte decodes


def _scan_text(
    path: Path, name: str, compression: str | None, codec: str, explicit: bool, hint: str, whole: bool = True
) -> _Scan:
    """Decodes the file (``whole``) or its first SAMPLE_CHARS characters; raises naming the byte offset of the
    first byte ``codec`` cannot decode.

    ``explicit``: the user chose the encoding; otherwise the message ends with ``hint``.
    """
    decode_as = "utf-8" if codec == "utf-8-sig" else codec  # the byte-order mark is skipped here, counted in offsets
    decoder = codecs.getincrementaldecoder(decode_as)(errors="strict")
    parts: list[str] = []
    kept = offset = newlines = 0
    last = b""
    first = True
    try:
        with _open_binary(path, compression) as stream:
            for chunk in itertools.chain(iter(lambda: stream.read(READ_CHUNK), b""), [b""]):
                final = not chunk  # reads are never empty: the empty chunk is the end
                if first and codec == "utf-8-sig" and chunk.startswith(UTF8_BOM):
                    chunk, offset = chunk[len(UTF8_BOM) :], len(UTF8_BOM)
                first = False
                pending = decoder.getstate()[0]  # undecoded bytes kept from the previous chunk
                try:
                    text = decoder.decode(chunk, final=final)
                except UnicodeDecodeError as error:
                    at = offset - len(pending) + error.start
                    line = newlines - pending.count(b"\n") + error.object[: error.start].count(b"\n") + 1
                    raise _decode_error(path, name, decode_as, explicit, hint, error, at, line) from None
                if kept < SAMPLE_CHARS:
                    parts.append(text[: SAMPLE_CHARS - kept])
                    kept += len(parts[-1])
                offset += len(chunk)
                newlines += chunk.count(b"\n")
                last = chunk[-1:] or last
                if not whole and kept >= SAMPLE_CHARS:
                    break
    except (OSError, EOFError, zlib.error) as error:
        if compression:
            raise IngestError(f"cannot read {name!r}: its gzip data is corrupt or truncated ({error})") from error
        raise IngestError(f"cannot read {name!r}: {error}") from error
    complete = kept < SAMPLE_CHARS
    return _Scan(
        sample="".join(parts),
        complete=complete,
        size=offset,
        final_newline=last in (b"\n", b"\r"),
        whole=whole or complete,
    )


def _decode_error(
    path: Path,
    name: str,
    codec: str,
    explicit: bool,
    hint: str,
    error: UnicodeDecodeError,
    offset: int,
    line: int,
) -> IngestError:
    byte = error.object[error.start : error.start + 1]
    where = f"byte 0x{byte.hex()} at offset {offset}"
    if "\n".encode(codec) == b"\n":  # line numbers only mean something when a line break is one byte
        where += f" (line {line})"
    if explicit:
        return IngestError(f"input file {name!r} is not valid {codec}: {where} cannot be decoded ({error.reason})")
    if hint == CSV_ENCODING_HINT and offset == 0 and _head(path, 2) in UTF16_BOMS:
        hint = "the file starts with a UTF-16 byte-order mark: set csv_encoding='utf-16'"
    return IngestError(f"input file {name!r} is not UTF-8: {where} cannot be decoded; {hint}")


def _sniff(scan: _Scan) -> str:
    """The delimiter csv.Sniffer finds among CSV_DELIMITERS in the first complete lines, else a comma."""
    text = scan.sample[:SNIFF_CHARS]
    if not (scan.complete and len(scan.sample) <= SNIFF_CHARS):
        text = text[: text.rfind("\n") + 1] or text  # whole lines only: a cut line skews the counts
    try:
        return csv.Sniffer().sniff(text, delimiters=CSV_DELIMITERS).delimiter
    except csv.Error:  # a single column, or no consistent candidate: the rows are checked against the header
        return ","


def _header(scan: _Scan, name: str, delimiter: str) -> list[str]:
    if not scan.complete and "\n" not in scan.sample:
        raise IngestError(
            f"cannot read {name!r} as csv: its first line is longer than {SAMPLE_CHARS} characters; is it CSV?"
        )
    for row in csv.reader(io.StringIO(scan.sample, newline=""), delimiter=delimiter):
        if row:
            return row
    raise IngestError(f"cannot read {name!r} as csv: it holds only blank lines, no header")


def _row_shape_error(
    path: Path,
    name: str,
    compression: str | None,
    codec: str,
    delimiter: str,
    width: int,
    found: pa_csv.InvalidRow,
    scan: _Scan,
) -> IngestError:
    """Locates the row pyarrow refused by its physical line (pyarrow counts rows, skipping blank lines)."""
    where, fields, is_last = f"row {found.number}", found.actual_columns, False  # if the csv module disagrees
    try:
        with _open_text(path, compression, codec) as stream:
            reader = csv.reader(stream, delimiter=delimiter)
            start = 1
            for row in reader:
                if row and len(row) != width:
                    where, fields = f"line {start}", len(row)
                    is_last = next(reader, None) is None
                    break
                start = reader.line_num + 1
    except csv.Error:
        pass  # keep pyarrow's row number
    message = f"input file {name!r}: {where} has {fields} field(s) but the header has {width}"
    if fields > width:
        return IngestError(f"{message} (a value containing the delimiter {delimiter!r} must be quoted)")
    if not scan.whole:
        scan = _scan_text(path, name, compression, codec, explicit=True, hint="")
    if is_last and not scan.final_newline:
        return IngestError(f"{message}; the file ends in the middle of that line, so it looks truncated")
    return IngestError(f"{message} (a truncated or malformed row)")


# --- Parquet -----------------------------------------------------------------------------------------------------


def _read_parquet(path: Path, name: str) -> pa.Table:
    head = _head(path, 32)
    if not head.startswith(PARQUET_MAGIC):
        raise IngestError(
            f"cannot read {name!r} as parquet: it is not a Parquet file (it starts with {_preview(head)}, "
            f"not the magic bytes {PARQUET_MAGIC.decode()!r})"
        )
    with open(path, "rb") as stream:
        stream.seek(max(0, path.stat().st_size - len(PARQUET_MAGIC)))
        tail = stream.read()
    if path.stat().st_size < 3 * len(PARQUET_MAGIC) or tail != PARQUET_MAGIC:
        raise IngestError(
            f"cannot read {name!r} as parquet: it is not a complete Parquet file "
            f"(it does not end with {PARQUET_MAGIC.decode()!r}, so it looks truncated)"
        )
    try:  # the file alone, not a dataset reader (which fails on repeated column names)
        return pq.ParquetFile(path).read()
    except (pa.ArrowException, OSError, ValueError) as error:
        raise IngestError(f"cannot read {name!r} as parquet: {_one_line(error)}") from error


def _preview(head: bytes) -> str:
    text = head.decode("utf-8", errors="replace")
    if all(char.isprintable() or char in "\r\n\t" for char in text):
        return f"text {text!r}"
    return f"bytes {head[:8].hex(' ')}"


# --- JSON Lines --------------------------------------------------------------------------------------------------


def _read_json_lines(path: Path, name: str) -> pa.Table:
    compression = "gzip" if _is_gzip(path) else None
    scan = _scan_text(path, name, compression, "utf-8-sig", explicit=False, hint="JSON Lines files must be UTF-8")
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
            f"cannot read {name!r} as JSON Lines: {_one_line(error)}"
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


def _json_lines_error(path: Path, name: str, compression: str | None, scan: _Scan) -> IngestError | None:
    """Names the first line that is not one JSON object (pandas' own errors name no line)."""
    with _open_text(path, compression, "utf-8-sig") as stream:
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


# --- helpers -----------------------------------------------------------------------------------------------------


def _head(path: Path, count: int) -> bytes:
    with open(path, "rb") as stream:
        return stream.read(count)


def _is_gzip(path: Path) -> bool:
    return _head(path, len(GZIP_MAGIC)) == GZIP_MAGIC


@contextmanager
def _open_binary(path: Path, compression: str | None) -> Iterator[IO[bytes]]:
    with gzip.open(path, "rb") if compression == "gzip" else open(path, "rb") as stream:
        yield stream


@contextmanager
def _open_text(path: Path, compression: str | None, codec: str) -> Iterator[IO[str]]:
    opener = gzip.open if compression == "gzip" else open
    with opener(path, "rt", encoding=codec, newline="") as stream:
        yield stream


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())
