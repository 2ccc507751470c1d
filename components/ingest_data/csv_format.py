"""Reads a CSV (or TSV) file into an Arrow table, as ``pandas.read_csv`` would, refusing what pandas would repair.

Owns the CSV options (``CsvOptions``: delimiter, encoding) and the CSV reader. pyarrow parses the file
(multi-threaded, column types fixed by one inference over the whole file), with the conversions
``pandas.read_csv`` makes by default: the same missing-value tokens (``NA``, ``null``, ``None``, an empty field,
...), ``True``/``False`` as booleans, whole numbers as integers, and dates and times kept as text. What pandas
would repair silently is refused instead, naming the line: a row with another number of fields than the header
(a truncated last line), a value whose quote never closes, repeated header names. Bytes the encoding cannot decode
are reported with their exact offset (``decoding``): the file's first characters are decoded up front (for the
header and delimiter detection) and, when the parser finds invalid text, the whole file is scanned for the first
bad byte.
"""

from __future__ import annotations

import codecs
import csv
import io
import zlib
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv

from components.ingest_data import decoding
from components.ingest_data.errors import IngestError

CSV_DELIMITERS = ",;\t|"  # what delimiter detection chooses among
NAMED_DELIMITERS = {"tab": "\t", "\\t": "\t"}  # a tab is hard to type into a pipeline parameter
SNIFF_CHARS = 64 * 1024  # decoded characters csv.Sniffer looks at
CSV_BLOCK_BYTES = 16 * 1024 * 1024  # bytes pyarrow parses per block and thread
# pandas.read_csv's default missing-value tokens and booleans, so a CSV file reads as users expect from pandas.
PANDAS_NA_VALUES = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA",
    "NULL", "NaN", "None", "n/a", "nan", "null",
]  # fmt: skip
PANDAS_TRUE_VALUES = ["True", "TRUE", "true"]
PANDAS_FALSE_VALUES = ["False", "FALSE", "false"]
CSV_ENCODING_HINT = "if the file uses another encoding, set csv_encoding (e.g. 'latin-1' or 'cp1252')"
UTF16_HINT = "the file starts with a UTF-16 byte-order mark: set csv_encoding='utf-16'"


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


def read_csv(path: Path, name: str, options: CsvOptions, default_delimiter: str) -> pa.Table:
    compression = "gzip" if decoding.is_gzip(path) else None
    hint = UTF16_HINT if decoding.head(path, 2) in decoding.UTF16_BOMS else CSV_ENCODING_HINT
    # UTF-8 is checked by the parser and only scanned for an exact offset when it fails; another encoding is
    # decoded by Python anyway, so the file is scanned up front.
    whole = options.codec != "utf-8-sig"
    scan = decoding.scan_text(
        path, name, compression, options.codec, explicit=bool(options.encoding), hint=hint, whole=whole
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
    table = _parse_csv(path, name, compression, options, delimiter, len(header), scan, hint)
    _check_quotes_close(path, name, compression, options.codec, delimiter)
    return table


def _parse_csv(
    path: Path,
    name: str,
    compression: str | None,
    options: CsvOptions,
    delimiter: str,
    width: int,
    scan: decoding.Scan,
    hint: str,
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
            decoding.scan_text(path, name, compression, codec, explicit=bool(options.encoding), hint=hint)
        if compression:
            raise IngestError(f"cannot read {name!r}: its gzip data is corrupt or truncated ({error})") from error
        raise IngestError(f"cannot read {name!r} as csv: {decoding.one_line(error)}") from error
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
    with decoding.open_binary(path, compression) as stream:
        for chunk in iter(lambda: stream.read(decoding.READ_CHUNK * 16), b""):
            quotes += chunk.count(b'"')
    if quotes % 2 == 0:
        return
    with decoding.open_text(path, compression, codec) as stream:
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


def _sniff(scan: decoding.Scan) -> str:
    """The delimiter csv.Sniffer finds among CSV_DELIMITERS in the first complete lines, else a comma."""
    text = scan.sample[:SNIFF_CHARS]
    if not (scan.complete and len(scan.sample) <= SNIFF_CHARS):
        text = text[: text.rfind("\n") + 1] or text  # whole lines only: a cut line skews the counts
    try:
        return csv.Sniffer().sniff(text, delimiters=CSV_DELIMITERS).delimiter
    except csv.Error:  # a single column, or no consistent candidate: the rows are checked against the header
        return ","


def _header(scan: decoding.Scan, name: str, delimiter: str) -> list[str]:
    if not scan.complete and "\n" not in scan.sample:
        raise IngestError(
            f"cannot read {name!r} as csv: its first line is longer than {decoding.SAMPLE_CHARS} characters; is it CSV?"
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
    scan: decoding.Scan,
) -> IngestError:
    """Locates the row pyarrow refused by its physical line (pyarrow counts rows, skipping blank lines)."""
    where, fields, is_last = f"row {found.number}", found.actual_columns, False  # if the csv module disagrees
    try:
        with decoding.open_text(path, compression, codec) as stream:
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
        scan = decoding.scan_text(path, name, compression, codec, explicit=True, hint="")
    if is_last and not scan.final_newline:
        return IngestError(f"{message}; the file ends in the middle of that line, so it looks truncated")
    return IngestError(f"{message} (a truncated or malformed row)")
