"""Reads a CSV (or TSV) file as Arrow record batches, as ``pandas.read_csv`` would, refusing what pandas would repair.

Owns the CSV options (``CsvOptions``: delimiter, encoding, decimal mark) and the CSV reader. The file is read in blocks
of about ``BLOCK_BYTES`` (bounded memory; pyarrow's own streaming reader reads ahead without bound), each cut after a
record: after the last line break preceded by an even number of quote characters. pyarrow parses each block with the
column types of the first block's inference; a later block whose values need a wider type (text in a column of numbers,
say) raises ``Widened`` and the file is read again with the widened types, so the types are those of one inference over
the whole file. The conversions are those ``pandas.read_csv`` makes by default: the same missing-value tokens (``NA``,
``null``, ``None``, an empty field, ...), ``True``/``False`` as booleans, whole numbers as integers, and dates and times
kept as text. What pandas would repair silently is refused instead, naming the line: a row with another number of fields
than the header (a truncated last line), a value whose quote never closes, repeated header names. So is a column of
numbers written with a decimal comma (``102,5``), naming the column, when no decimal mark was chosen: read with the
default decimal point it would silently be text. A column holding a whole number beyond int64 (an identifier of 20
digits, say) is read as text, as pandas reads numbers beyond 64 bits: pyarrow would read it as floats and silently drop
their last digits. Bytes the encoding cannot decode are reported with their exact offset
(``decoding``): the file's first characters are decoded up front (for the header and delimiter detection) and, when a
block does not decode, the file is scanned from its start for the first bad byte.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from components.ingest_data import decoding
from components.ingest_data.errors import IngestError
from components.ingest_data.names import check_named

CSV_DELIMITERS = ",;\t|"  # what delimiter detection chooses among
NAMED_DELIMITERS = {"tab": "\t", "\\t": "\t"}  # a tab is hard to type into a pipeline parameter
SNIFF_CHARS = 64 * 1024  # decoded characters csv.Sniffer looks at
BLOCK_BYTES = 16 * 1024 * 1024  # input bytes per record batch (and Parquet row group); tests lower it
PARSE_BLOCK_BYTES = 4 * 1024 * 1024  # pyarrow parses a block in parts of this size, one per thread
MAX_UNCUT_BLOCKS = 4  # a block this many times BLOCK_BYTES without a record boundary: check the quotes close
# pandas.read_csv's default missing-value tokens and booleans, so a CSV file reads as users expect from pandas.
PANDAS_NA_VALUES = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA",
    "NULL", "NaN", "None", "n/a", "nan", "null",
]  # fmt: skip
PANDAS_TRUE_VALUES = ["True", "TRUE", "true"]
PANDAS_FALSE_VALUES = ["False", "FALSE", "false"]
CSV_ENCODING_HINT = "if the file uses another encoding, set csv_encoding (e.g. 'latin-1' or 'cp1252')"
UTF16_HINT = "the file starts with a UTF-16 byte-order mark: set csv_encoding='utf-16'"
DECIMAL_MARKS = (".", ",")
# A column of these, some with a comma, is numbers written with a decimal comma (Excel's export in many locales).
DECIMAL_COMMA_NUMBER = r"^\s*[+-]?[0-9]+(,[0-9]+)?\s*$"
WHOLE_NUMBER = r"^\s*[+-]?[0-9]+\s*$"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT64_LIMIT = 2.0**63  # a float this large may be a whole number no int64 holds, its last digits dropped


@dataclass(frozen=True)
class CsvOptions:
    """How CSV files are split and decoded. Build it with ``CsvOptions.parse``, which validates the options.

    ``delimiter``: one character, or empty to detect it among ``, ; TAB |`` (a ``.tsv`` file is tab-separated).
    ``encoding``: a Python codec name, or empty for UTF-8 (a byte-order mark is allowed either way for UTF-8).
    ``decimal``: the decimal mark, ``.`` or ``,``; empty is ``.``, and a text column whose every value is a number
    with a decimal comma is refused, naming it (the user chooses: ``,`` reads numbers, ``.`` keeps the text).
    """

    delimiter: str = ""
    encoding: str = ""
    decimal: str = ""

    @classmethod
    def parse(cls, delimiter: str = "", encoding: str = "", decimal: str = "") -> CsvOptions:
        return cls(
            delimiter=_delimiter_option(delimiter),
            encoding=_encoding_option(encoding),
            decimal=_decimal_option(decimal),
        )

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


def _decimal_option(value: str) -> str:
    if value not in ("", *DECIMAL_MARKS):
        raise IngestError(f"csv_decimal must be '.' or ',' (or empty for '.'), got {value!r}")
    return value


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


class Widened(Exception):
    """A block of the file did not convert with the column types fixed so far: the file must be read again (and
    what was written from it discarded) with ``types``, which hold every value seen so far."""

    def __init__(self, name: str, types: dict[str, pa.DataType]):
        super().__init__(f"{name!r}: column types widen to {types}")
        self.name = name
        self.types = types


def unify_types(old: pa.DataType, new: pa.DataType) -> pa.DataType:
    """The narrowest type holding values of both, as pyarrow's own inference over a whole file widens:
    null < bool, null < int64 < double, anything else (and temporal types, kept as text) -> string."""
    if pa.types.is_temporal(old) or pa.types.is_temporal(new):
        return pa.string()
    if old == new:
        return old
    if pa.types.is_null(old) or pa.types.is_null(new):
        return new if pa.types.is_null(old) else old
    if {old, new} == {pa.int64(), pa.float64()}:
        return pa.float64()
    return pa.string()


@dataclass(frozen=True)
class CsvHeader:
    """What is known of a CSV file before its rows are parsed."""

    compression: str | None
    delimiter: str
    names: list[str]  # the header as the csv module reads it
    scan: decoding.Scan
    hint: str


def stream_header(path: Path, name: str, options: CsvOptions, default_delimiter: str) -> CsvHeader:
    """Checks the file's start (decodes, not empty, a header without blank or repeated names) and detects the
    delimiter."""
    compression = "gzip" if decoding.is_gzip(path) else None
    hint = UTF16_HINT if decoding.head(path, 2) in decoding.UTF16_BOMS else CSV_ENCODING_HINT
    # Only the start is decoded up front; the blocks are decoded as they are read, and the first bad byte's exact
    # offset is found by a second scan only when decoding fails.
    scan = decoding.scan_text(
        path, name, compression, options.codec, explicit=bool(options.encoding), hint=hint, whole=False
    )
    if scan.size == 0:
        raise IngestError(f"input file {name!r} is empty (0 bytes after gzip decompression)")
    delimiter = options.delimiter or default_delimiter or _sniff(scan)
    header = _header(scan, name, delimiter)
    check_named(
        header, name, delimited=True
    )  # before the repeats: two blank cells are unnamed columns, not one name twice
    repeated = sorted({column for column in header if header.count(column) > 1})
    if repeated:
        listed = ", ".join(f"{column!r} ({header.count(column)} times)" for column in repeated)
        raise IngestError(
            f"input file {name!r} repeats column name(s) in its header: {listed}; column names must be unique"
        )
    return CsvHeader(compression, delimiter, header, scan, hint)


def stream_csv(
    path: Path,
    name: str,
    options: CsvOptions,
    default_delimiter: str,
    types: dict[str, pa.DataType] | None = None,
    block_bytes: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """The file's rows as record batches of about ``block_bytes`` of input each (default ``BLOCK_BYTES``), all of one
    schema: ``types`` (from an earlier, widened read) or the first block's inference. Raises ``Widened`` when a
    later block needs wider types; the caller reads the file again with them.

    A column without any value is float64, as pandas reads it; dates and times stay text.
    """
    header = stream_header(path, name, options, default_delimiter)
    block_bytes = block_bytes or BLOCK_BYTES
    codec = options.codec
    invalid: list[pa_csv.InvalidRow] = []

    def stop_at_first(row: pa_csv.InvalidRow) -> str:
        invalid.append(row)
        return "error"

    parse_options = pa_csv.ParseOptions(
        delimiter=header.delimiter, newlines_in_values=True, invalid_row_handler=stop_at_first
    )
    decimal = options.decimal or "."
    commas = None if options.decimal else _DecimalCommas()
    names: list[str] | None = None  # pyarrow's header, read from the first block
    quotes = 0

    def failure(error: BaseException) -> IngestError:
        if invalid:
            return _row_shape_error(
                path, name, header.compression, codec, header.delimiter, len(header.names), invalid[0], header.scan
            )
        if codec == "utf-8-sig":  # the parser met invalid UTF-8: name the first bad byte's offset and line
            decoding.scan_text(path, name, header.compression, codec, explicit=bool(options.encoding), hint=header.hint)
        if header.compression:
            return IngestError(f"cannot read {name!r}: its gzip data is corrupt or truncated ({error})")
        return IngestError(f"cannot read {name!r} as csv: {decoding.one_line(error)}")

    def check_quotes() -> None:
        _check_quotes_close(path, name, header.compression, codec, header.delimiter)

    blocks = _blocks(path, name, header, options, block_bytes, check_quotes)
    while True:
        try:
            block, block_quotes = next(blocks)
        except StopIteration:
            break
        except (pa.ArrowException, OSError, EOFError, zlib.error) as error:
            raise failure(error) from error
        quotes += block_quotes
        block_names = names  # None: the first block, its first line the header
        try:
            table = _parse_block(block, block_names, types, parse_options, decimal)
        except pa.ArrowInvalid as error:
            if invalid or types is None or "conversion error" not in str(error):
                raise failure(error) from error
            try:  # the block's own types: does a wider type hold its values?
                found = _infer_block(block, names, parse_options, decimal)
            except pa.ArrowException as inner:
                raise failure(inner) from inner
            widened = {column: unify_types(types[column], found[column]) for column in types}
            if widened == types:
                raise failure(error) from error
            raise Widened(name, widened) from None
        except (pa.ArrowException, OSError) as error:
            raise failure(error) from error
        if names is None:
            names = table.column_names
            if types is None:  # the first block's inference, dates and times as text
                types = {field.name: _as_text_if_temporal(field.type) for field in table.schema}
                if any(types[field.name] != field.type for field in table.schema):
                    table = _parse_block(block, None, types, parse_options, decimal)
        beyond = _whole_numbers_beyond_int64(block, block_names, table, types, parse_options, decimal)
        if beyond:
            raise Widened(name, {**types, **dict.fromkeys(beyond, pa.string())})
        if commas is not None:
            commas.see(table)
        if table.num_rows:
            # One chunk per block: else pyarrow's internal blocks become tiny Parquet row groups.
            yield _nulls_as_float(table.combine_chunks()).to_batches()[0]
    if quotes % 2:
        check_quotes()
    if commas is not None:
        commas.check(name)


class _DecimalCommas:
    """Text columns whose every value so far is a whole number or one with a decimal comma, at least one of them
    with the comma: ``102,5`` read with a decimal point. A column leaves at its first other value, which is
    usually its first (a cheap look before the whole column is matched)."""

    def __init__(self):
        self.candidates: dict[str, str | None] | None = None  # column -> a value with a comma, once seen

    def see(self, table: pa.Table) -> None:
        if self.candidates is None:
            self.candidates = {field.name: None for field in table.schema if pa.types.is_string(field.type)}
        for column in list(self.candidates):
            values = table.column(column).drop_null()
            if not len(values):
                continue
            if (
                not re.match(DECIMAL_COMMA_NUMBER, values[0].as_py())
                or not pc.all(pc.match_substring_regex(values, DECIMAL_COMMA_NUMBER)).as_py()
            ):
                del self.candidates[column]
            elif self.candidates[column] is None:
                with_comma = values.filter(pc.match_substring(values, ","))
                self.candidates[column] = with_comma[0].as_py() if len(with_comma) else None

    def check(self, name: str) -> None:
        found = {column: example for column, example in (self.candidates or {}).items() if example is not None}
        if found:
            listed = ", ".join(f"{column!r} (e.g. {example!r})" for column, example in found.items())
            raise IngestError(
                f"input file {name!r}: column(s) {listed} hold numbers written with a decimal comma, which would be "
                "read as text; set csv_decimal=',' to read them as numbers, or csv_decimal='.' to keep them as text"
            )


def _whole_numbers_beyond_int64(
    block,
    names: list[str] | None,
    table: pa.Table,
    types: dict[str, pa.DataType],
    parse_options: pa_csv.ParseOptions,
    decimal: str,
) -> list[str]:
    """The float columns of ``block`` holding a value written as a whole number beyond int64: pyarrow reads it as a
    float, dropping digits (``18446744073709551616123`` becomes ``1.8446744073709552e+22``). The text of a column is
    parsed again only when one of its floats is that large, so other blocks cost one max per float column."""
    large = {}
    for field in table.schema:
        if pa.types.is_floating(field.type):
            at_least = pc.greater_equal(pc.abs(table.column(field.name)), INT64_LIMIT)
            if pc.any(at_least).as_py():
                large[field.name] = at_least
    if not large:
        return []
    text = _parse_block(block, names, {**types, **dict.fromkeys(large, pa.string())}, parse_options, decimal)
    return [
        name
        for name, at_least in large.items()
        if any(
            re.match(WHOLE_NUMBER, value) and not INT64_MIN <= int(value) <= INT64_MAX
            for value in text.column(name).filter(at_least).to_pylist()
        )
    ]


def _as_text_if_temporal(kind: pa.DataType) -> pa.DataType:
    return pa.string() if pa.types.is_temporal(kind) else kind


def _parse_block(
    block,
    names: list[str] | None,
    types: dict[str, pa.DataType] | None,
    parse_options: pa_csv.ParseOptions,
    decimal: str,
) -> pa.Table:
    read_options = pa_csv.ReadOptions(encoding="utf8", block_size=PARSE_BLOCK_BYTES, column_names=names)
    convert_options = pa_csv.ConvertOptions(
        column_types=types,
        decimal_point=decimal,
        null_values=PANDAS_NA_VALUES,
        strings_can_be_null=True,
        true_values=PANDAS_TRUE_VALUES,
        false_values=PANDAS_FALSE_VALUES,
    )
    return pa_csv.read_csv(pa.BufferReader(pa.py_buffer(block)), read_options, parse_options, convert_options)


def _infer_block(
    block, names: list[str] | None, parse_options: pa_csv.ParseOptions, decimal: str
) -> dict[str, pa.DataType]:
    table = _parse_block(block, names, None, parse_options, decimal)
    return {field.name: _as_text_if_temporal(field.type) for field in table.schema}


def _nulls_as_float(table: pa.Table) -> pa.Table:
    """A column without any value is all floats' NaN in pandas; pyarrow types it null."""
    for position, column in enumerate(table.schema):
        if pa.types.is_null(column.type):
            table = table.set_column(position, column.name, table.column(position).cast(pa.float64()))
    return table


def _blocks(
    path: Path, name: str, header: CsvHeader, options: CsvOptions, block_bytes: int, check_quotes
) -> Iterator[tuple[bytes | memoryview, int]]:
    """The file as UTF-8 blocks of about ``block_bytes``, each ending at a record boundary (except maybe the last),
    with the number of quote characters in each.

    A block is cut after the last line break with an even number of quote characters before it: in valid CSV a
    line break after an odd number is inside a quoted value. A block without such a line break grows; once it is
    ``MAX_UNCUT_BLOCKS`` blocks long the file is checked for a quote that never closes (which would make the rest
    of the file one value) before it grows further.
    """
    decode = _utf8_decoder(path, name, header, options)
    pending = b""
    checked = False
    with pa.input_stream(str(path), compression=header.compression) as stream:
        while True:
            raw = stream.read(block_bytes)
            data = decode(raw, not raw)
            if pending:
                data = pending + data
            if not raw:
                if data:
                    yield data, data.count(b'"')
                return
            cut, total = _safe_cut(data)
            if cut <= 0:
                pending = data
                if not checked and len(pending) > MAX_UNCUT_BLOCKS * block_bytes:
                    check_quotes()
                    checked = True
                continue
            view = memoryview(data)
            yield view[:cut], total - data.count(b'"', cut)  # counts the short rest, not the block again
            pending = bytes(view[cut:])
            del view


def _utf8_decoder(path: Path, name: str, header: CsvHeader, options: CsvOptions):
    """UTF-8 passes through (pyarrow checks it); another encoding is decoded incrementally, so a character split
    between two reads (UTF-16's two bytes, say) is decoded once both halves are read."""
    if options.codec == "utf-8-sig":
        return lambda raw, final: raw
    decoder = codecs.getincrementaldecoder(options.codec)(errors="strict")

    def decode(raw: bytes, final: bool) -> bytes:
        try:
            return decoder.decode(raw, final=final).encode("utf-8")
        except UnicodeDecodeError:
            # The scan from the file's start names the offset and line of the first byte that does not decode.
            decoding.scan_text(
                path, name, header.compression, options.codec, explicit=bool(options.encoding), hint=header.hint
            )
            raise

    return decode


def _safe_cut(data: bytes) -> tuple[int, int]:
    """The offset just after the last line break with an even number of quotes before it (-1 if none), and the
    number of quotes in ``data``."""
    total = data.count(b'"')
    last = data.rfind(b"\n")
    if last < 0:
        return -1, total
    if total == 0 or (total - data.count(b'"', last)) % 2 == 0:
        return last + 1, total
    codes = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(codes == ord("\n"))
    quotes_before = np.searchsorted(np.flatnonzero(codes == ord('"')), newlines)
    even = np.flatnonzero(quotes_before % 2 == 0)
    return (int(newlines[even[-1]]) + 1 if even.size else -1), total


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
