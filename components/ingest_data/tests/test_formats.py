"""ingest_data formats: CSV dialects and encodings, gzip, Parquet and JSON Lines, and the malformed files that must
fail naming the file and the problem. The small corpus under tests/data/ingest/ can be opened and read by hand."""

from __future__ import annotations

import datetime
import gzip
import re
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from components.ingest_data import decoding
from components.ingest_data.errors import IngestError
from components.ingest_data.logic import read_source

CORPUS = Path(__file__).resolve().parents[3] / "tests" / "data" / "ingest"

FLATS = pd.DataFrame(
    {
        "city": ["Lyon", "Porto", "Graz"],
        "area_m2": [54.5, 71.0, 38.2],
        "rooms": [2, 3, 1],
    }
)


def corpus(name: str) -> str:
    return str(CORPUS / name)


def ingest(source_uri: str, **options) -> pd.DataFrame:
    """The dataset at ``source_uri`` as pandas, as the later steps read it."""
    return read_source(source_uri, **options).frame


def fails(path, message: str, **options) -> None:
    """Reading ``path`` raises an IngestError naming the file and matching ``message``."""
    with pytest.raises(IngestError, match=message) as raised:
        ingest(str(path), **options)
    assert str(path) in str(raised.value)


# --- the committed corpus: read correctly -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "comment"),
    [
        ("semicolon.csv", ["bright, quiet", "near the river, renovated", "small"]),  # commas inside values
        ("tabs.tsv", ["bright, quiet; sunny", "near the river", "small"]),
    ],
)
def test_delimiter_is_detected_and_values_keep_their_types(name, comment):
    frame = ingest(corpus(name))

    pd.testing.assert_frame_equal(frame, FLATS.assign(comment=comment))


def test_gzipped_csv_is_decompressed():
    frame = ingest(corpus("gzipped.csv.gz"))

    pd.testing.assert_frame_equal(frame, FLATS.assign(furnished=[True, False, True]))
    assert frame["furnished"].dtype == bool


def test_utf8_byte_order_mark_is_not_part_of_the_first_column_name():
    frame = ingest(corpus("utf8_bom.csv"))

    assert list(frame.columns) == ["city", "area_m2", "rooms"]
    assert frame["city"].tolist() == ["Zürich", "Málaga", "Kraków"]
    assert frame["rooms"].dtype == np.int64


def test_utf8_byte_order_mark_is_also_skipped_when_utf8_is_named():
    assert list(ingest(corpus("utf8_bom.csv"), csv_encoding="UTF-8").columns) == ["city", "area_m2", "rooms"]


def test_json_lines_keep_json_types():
    frame = ingest(corpus("flats.jsonl"))

    pd.testing.assert_frame_equal(frame[["city", "area_m2", "rooms"]], FLATS)
    assert frame["furnished"].iloc[:2].tolist() == [True, False]
    assert pd.isna(frame["furnished"].iloc[2])


# --- the committed corpus: refused, naming the file and the problem ----------------------------------------------


def test_latin1_is_not_utf8_and_the_error_names_the_byte_offset_and_line():
    path = corpus("latin1.csv")  # "Zürich" on line 3: the ü is the byte 0xfc at offset 32
    fails(path, r"is not UTF-8: byte 0xfc at offset 32 \(line 3\) cannot be decoded; .*set csv_encoding")


def test_latin1_reads_when_its_encoding_is_given():
    frame = ingest(corpus("latin1.csv"), csv_encoding="latin-1")

    pd.testing.assert_frame_equal(frame, FLATS.assign(city=["Lyon", "Zürich", "Málaga"]))


def test_duplicate_header_names_are_refused_instead_of_renamed():
    # pandas alone would silently call the second one 'city.1'.
    fails(corpus("duplicate_header.csv"), r"repeats column name\(s\) in its header: 'city' \(2 times\)")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("middle.csv", "city,,rooms\nLyon,54.5,2\n", r"column 2 of 3 has no name \(''\)"),
        ("spaces.csv", "city, ,rooms\nLyon,54.5,2\n", r"column 2 of 3 has no name \(' '\)"),
        ("two.csv", "city,,,rooms\nLyon,54.5,1,2\n", r"columns 2, 3 of 4 have no name \(''\)"),
        (
            "trailing.csv",
            "city,rooms,\nLyon,2,\n",
            r"column 3 of 3 has no name \('', as when every line ends with a delimiter\)",
        ),
        ("header_only.csv", "city,,rooms\n", r"column 2 of 3 has no name \(''\)"),
        ("key.jsonl", '{"city": "Lyon", "": 54.5}\n', r"column 2 of 2 has no name \(''\)"),
    ],
)
def test_a_column_without_a_name_is_refused_naming_its_position(tmp_path, name, content, message):
    # pyarrow reads a blank header cell as a column named '', which would become a feature no request can name.
    path = tmp_path / name
    path.write_text(content)

    fails(path, message + r"; every column needs a name: name it in the file, or remove the column")


def test_a_parquet_column_without_a_name_is_refused_naming_its_position(tmp_path):
    path = tmp_path / "blank.parquet"
    pq.write_table(pa.table({"city": ["Lyon"], "": [54.5]}), path)

    with pytest.raises(IngestError, match=r"^input file '.*blank\.parquet': column 2 of 2 has no name \(''\)"):
        ingest(str(path))


def test_header_only_file_is_refused():
    fails(corpus("header_only.csv"), r"has a header but no data rows")


def test_empty_file_is_refused():
    fails(corpus("empty.csv"), r"is empty \(0 bytes\)")


def test_truncated_last_line_is_refused_naming_the_line():
    # pandas alone pads the short row with NaN and reads 3 rows.
    fails(
        corpus("truncated_last_line.csv"),
        r"line 4 has 2 field\(s\) but the header has 4; the file ends in the middle of that line, "
        r"so it looks truncated",
    )


def test_text_named_parquet_is_not_a_parquet_file():
    fails(
        corpus("csv_named_parquet.parquet"),
        r"cannot read .* as parquet: it is not a Parquet file \(it starts with text 'city,area_m2,rooms",
    )


def test_corpus_files_are_small():
    assert all(path.stat().st_size <= 4096 for path in CORPUS.iterdir())


# --- CSV: delimiter ----------------------------------------------------------------------------------------------


def test_pipe_delimiter_is_detected(tmp_path):
    path = tmp_path / "pipes.csv"
    path.write_text("city|area_m2\nLyon|54.5\nPorto|71.0\n")

    assert ingest(str(path)).to_dict("list") == {"city": ["Lyon", "Porto"], "area_m2": [54.5, 71.0]}


def test_single_column_csv_reads(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("price\n1\n2\n")

    assert ingest(str(path))["price"].tolist() == [1, 2]


def test_given_delimiter_overrides_detection(tmp_path):
    path = tmp_path / "pipes.csv"
    path.write_text("city,name|area_m2\nLyon,A|54.5\nPorto,B|71.0\n")

    frame = ingest(str(path), csv_delimiter="|")

    assert list(frame.columns) == ["city,name", "area_m2"]
    # Told it is comma-separated, the semicolon file has one column in its header and two in its rows.
    fails(corpus("semicolon.csv"), r"line 2 has 2 field\(s\) but the header has 1", csv_delimiter=",")


@pytest.mark.parametrize("option", ["tab", "\\t", "\t"])
def test_tab_can_be_named(tmp_path, option):
    path = tmp_path / "tabs.csv"
    path.write_text("a\tb\n1\t2\n")

    assert list(ingest(str(path), csv_delimiter=option).columns) == ["a", "b"]


@pytest.mark.parametrize(("option", "message"), [("ab", "'ab'"), ('"', "'\"'"), ("\n", r"'\\n'")])
def test_bad_delimiter_option_is_refused(option, message):
    with pytest.raises(IngestError, match=rf"csv_delimiter must be one character .*got {message}"):
        ingest(corpus("semicolon.csv"), csv_delimiter=option)


# --- CSV: decimal mark -------------------------------------------------------------------------------------------

DECIMAL_COMMAS = "city;area_m2;rooms;note\nLyon;54,5;2;1,2\nPorto;71;3;x\nGraz;-38,25;1;3,4\n"


def test_decimal_comma_numbers_are_refused_naming_the_column_and_the_choice(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_text(DECIMAL_COMMAS)

    # 'note' holds text too, so it is text whatever the decimal mark; 'rooms' has no comma: both go unnamed.
    fails(path, r"column\(s\) 'area_m2' \(e.g. '54,5'\) hold numbers written with a decimal comma.*csv_decimal=','")


def test_decimal_comma_in_a_late_block_is_named_too(tmp_path):
    path = tmp_path / "late.csv"
    path.write_text("id;price\n" + "".join(f"{i};{i}\n" for i in range(3000)) + "3000;12,5\n")

    fails(path, r"'price' \(e.g. '12,5'\)", block_bytes=1024)


def test_csv_decimal_comma_reads_numbers(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_text(DECIMAL_COMMAS)

    frame = ingest(str(path), csv_decimal=",")

    assert frame["area_m2"].tolist() == [54.5, 71.0, -38.25]
    assert frame["rooms"].tolist() == [2, 3, 1]
    assert frame["note"].tolist() == ["1,2", "x", "3,4"]


def test_csv_decimal_point_keeps_decimal_comma_text(tmp_path):
    path = tmp_path / "codes.csv"
    path.write_text("code;count\n1,5;3\n2,10;4\n")

    assert ingest(str(path), csv_decimal=".").to_dict("list") == {"code": ["1,5", "2,10"], "count": [3, 4]}


def test_comma_separated_values_with_a_decimal_point_are_not_suspected(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text('city,area_m2,range\nLyon,54.5,"1,2"\nPorto,71.0,"3-4"\n')

    assert ingest(str(path))["area_m2"].tolist() == [54.5, 71.0]


@pytest.mark.parametrize("option", [";", "comma", ". "])
def test_bad_decimal_option_is_refused(option):
    with pytest.raises(IngestError, match=rf"csv_decimal must be '.' or ','.*got '{re.escape(option)}'"):
        ingest(corpus("semicolon.csv"), csv_decimal=option)


# --- CSV: whole numbers beyond int64 ----------------------------------------------------------------------------

BIG = "18446744073709551616123"  # beyond uint64 too; as a float: 1.8446744073709552e+22


@pytest.mark.parametrize("value", [BIG, "9223372036854775808", "-9223372036854775809", "10000000000000000000"])
def test_whole_numbers_beyond_int64_are_read_as_their_exact_text(tmp_path, value):
    path = tmp_path / "ids.csv"
    path.write_text(f"id,area_m2,price\n1,54.5,10\n{value},71.0,11\n3,1e22,12\n")

    frame = ingest(str(path))

    assert frame["id"].tolist() == ["1", value, "3"]  # not floats that dropped the last digits
    assert frame["area_m2"].tolist() == [54.5, 71.0, 1e22]  # a large number written as a float stays one
    assert frame["price"].tolist() == [10, 11, 12]


def test_a_whole_number_beyond_int64_in_a_late_block_makes_the_whole_column_text(tmp_path):
    path = tmp_path / "late.csv"
    path.write_text("id,price\n" + "".join(f"{i},{i}\n" for i in range(3000)) + f"{BIG},1\n")

    frame = ingest(str(path), block_bytes=1024)

    assert frame["id"].iloc[[0, 2999, 3000]].tolist() == ["0", "2999", BIG]  # every block's values as text
    assert frame["price"].dtype == np.int64


def test_a_whole_number_beyond_int64_beside_floats_makes_the_column_text_too(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text(f"x,y\n2.5,9223372036854775807\n{BIG},1.5\n")

    frame = ingest(str(path))

    assert frame["x"].tolist() == ["2.5", BIG]  # no digit dropped, whatever the block's other values
    assert frame["y"].tolist() == [float(2**63 - 1), 1.5]  # int64's largest beside a float: a float, as in pandas


# --- CSV: encoding -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["no-such-codec", "base64"])
def test_unknown_or_non_text_encoding_is_refused(option):
    with pytest.raises(IngestError, match=rf"csv_encoding '{option}' is not a text encoding"):
        ingest(corpus("latin1.csv"), csv_encoding=option)


def test_byte_offsets_are_exact_across_read_chunks(tmp_path, monkeypatch):
    # Tiny chunks split the two-byte 'é' (valid) between reads; the bad byte is found at its file offset.
    monkeypatch.setattr(decoding, "READ_CHUNK", 3)
    path = tmp_path / "chunks.csv"
    data = "name,n\nRené,1\nJosé,2\n".encode() + b"Bj\xf6rn,3\n"
    path.write_bytes(data)

    offset = data.index(b"\xf6")
    fails(path, rf"byte 0xf6 at offset {offset} \(line 4\)")


def test_offsets_count_the_byte_order_mark(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfa,b\n1,\xff\n")

    fails(path, r"byte 0xff at offset 9 \(line 2\)")


def test_cut_multibyte_character_at_the_end_is_reported(tmp_path):
    path = tmp_path / "cut.csv"
    path.write_bytes("a,b\n1,é".encode()[:-1])

    fails(path, rf"byte 0xc3 at offset {path.stat().st_size - 1} \(line 2\)")


def test_given_encoding_that_cannot_decode_names_it(tmp_path):
    path = tmp_path / "cp1252.csv"
    path.write_bytes(b"a,b\n1,\x81\n")  # 0x81 is unassigned in cp1252

    fails(path, r"is not valid cp1252: byte 0x81 at offset 6 \(line 2\)", csv_encoding="cp1252")


def test_utf16_gets_a_hint_and_reads_when_named(tmp_path):
    path = tmp_path / "utf16.csv"
    path.write_bytes("city,rooms\nZürich,2\n".encode("utf-16"))

    fails(path, r"starts with a UTF-16 byte-order mark: set csv_encoding='utf-16'")
    assert ingest(str(path), csv_encoding="utf-16").to_dict("list") == {"city": ["Zürich"], "rooms": [2]}


# --- CSV: rows ---------------------------------------------------------------------------------------------------


def test_short_row_in_the_middle_is_refused(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("a,b,c\n1,2,3\n4,5\n6,7,8\n")

    fails(path, r"line 3 has 2 field\(s\) but the header has 3 \(a truncated or malformed row\)")


def test_extra_field_is_refused_rather_than_becoming_the_index(tmp_path):
    # pandas alone turns column 'a' into the index and shifts every value one column to the left.
    path = tmp_path / "extra.csv"
    path.write_text("a,b,c\n1,2,3,4\n5,6,7,8\n")

    fails(path, r"line 2 has 4 field\(s\) but the header has 3 \(a value containing the delimiter ',' must be quoted")


def test_line_numbers_count_blank_lines_and_quoted_line_breaks(tmp_path):
    path = tmp_path / "lines.csv"
    path.write_text('a,b,c\n\n1,"two\nlines",3\n4,5\n7,8,9\n')

    fails(path, r"line 5 has 2 field\(s\)")


def test_last_line_without_line_break_is_fine_when_complete(tmp_path):
    path = tmp_path / "no_newline.csv"
    path.write_text("a,b\n1,2\n3,4")

    assert ingest(str(path)).to_dict("list") == {"a": [1, 3], "b": [2, 4]}


def test_trailing_empty_fields_are_values_not_missing_fields(tmp_path):
    path = tmp_path / "trailing.csv"
    path.write_text("a,b,c\n1,2,\n")

    frame = ingest(str(path))
    assert frame["a"].tolist() == [1] and pd.isna(frame["c"].iloc[0])


def test_unclosed_quote_at_the_end_is_reported_as_truncation(tmp_path):
    path = tmp_path / "quote.csv"
    path.write_text('a,b\n1,"x\n2,y\n')

    fails(path, r"the quoted value in the record starting on line 2 never closes .* so it looks truncated")


def test_a_stray_quote_inside_a_value_is_text_not_an_unclosed_quote(tmp_path):
    path = tmp_path / "heights.csv"
    path.write_text("name,height\nAnn,5'11\"\nBo,6'1\"\nCy,5'9\"\n")
    assert ingest(str(path))["height"].tolist() == ["5'11\"", "6'1\"", "5'9\""]


def test_first_line_longer_than_the_sample_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(decoding, "SAMPLE_CHARS", 16)
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"column_{index}" for index in range(10)) + "\n" + ",".join("1" * 10) + "\n")

    fails(path, r"its first line is longer than 16 characters")


# --- gzip --------------------------------------------------------------------------------------------------------


def test_plain_text_named_csv_gz_reads(tmp_path):
    # An HTTP server may already have decompressed it: gzip is recognised by its magic bytes.
    path = tmp_path / "plain.csv.gz"
    path.write_text("a,b\n1,2\n")

    assert ingest(str(path)).to_dict("list") == {"a": [1], "b": [2]}


def test_truncated_gzip_is_reported(tmp_path):
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(gzip.compress(b"a,b\n" + b"1,2\n" * 1000)[:40])

    fails(path, r"its gzip data is corrupt or truncated")


def test_gzip_of_nothing_is_empty(tmp_path):
    path = tmp_path / "nothing.csv.gz"
    path.write_bytes(gzip.compress(b""))

    fails(path, r"is empty \(0 bytes after gzip decompression\)")


def test_gzipped_json_lines_read(tmp_path):
    path = tmp_path / "rows.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"a": 1}\n{"a": 2}\n'))

    assert ingest(str(path))["a"].tolist() == [1, 2]


# --- Parquet -----------------------------------------------------------------------------------------------------


def test_truncated_parquet_is_reported(tmp_path):
    path = tmp_path / "cut.parquet"
    FLATS.to_parquet(path, index=False)
    path.write_bytes(path.read_bytes()[:-20])

    fails(path, r"it is not a complete Parquet file \(it does not end with 'PAR1', so it looks truncated\)")


def test_binary_non_parquet_shows_bytes(tmp_path):
    path = tmp_path / "zip.parquet"
    path.write_bytes(b"PK\x03\x04" + bytes(range(40)))

    fails(path, r"it is not a Parquet file \(it starts with bytes 50 4b 03 04")


def test_parquet_with_duplicate_column_names_is_refused(tmp_path):
    path = tmp_path / "dup.parquet"
    pq.write_table(pa.table([[1, 2], [3, 4]], names=["a", "a"]), path)

    fails(path, r"has duplicate column names \['a'\]")


def test_parquet_without_rows_is_refused(tmp_path):
    path = tmp_path / "none.parquet"
    FLATS.head(0).to_parquet(path, index=False)

    fails(path, r"has columns but no data rows")


def test_parquet_saved_by_pandas_with_its_index_keeps_named_levels_as_columns(tmp_path):
    """A frame saved after a filter keeps pandas' unnamed row labels in the file: dropped, not a feature nor the row
    index (which lost the column for the data steps); a named index, one level or several, is data: columns."""
    houses = FLATS.assign(house_id=[101, 102, 103])
    houses[houses["rooms"] != 3].to_parquet(tmp_path / "filtered.parquet")
    houses.set_index("house_id").to_parquet(tmp_path / "by_id.parquet")
    houses.set_index(["house_id", "city"]).to_parquet(tmp_path / "by_two.parquet")

    filtered = ingest(str(tmp_path / "filtered.parquet"))
    pd.testing.assert_frame_equal(filtered, houses[houses["rooms"] != 3].reset_index(drop=True))
    for name in ("by_id", "by_two"):
        frame = ingest(str(tmp_path / f"{name}.parquet"))
        assert list(frame.index) == [0, 1, 2]
        pd.testing.assert_frame_equal(frame[houses.columns], houses)


def test_parquet_decimals_are_numbers_and_nested_values_their_json_text(tmp_path):
    path = tmp_path / "typed.parquet"
    table = pa.table(
        {
            "price": pa.array([Decimal("120172.50"), None, Decimal("99000.05")], pa.decimal128(10, 2)),
            "tags": pa.array([["garden", "garage"], None, []]),
            "address": pa.array(
                [{"zip": "01234", "floor": 2}, {"zip": "75001", "floor": None}, None],
                pa.struct([("zip", pa.string()), ("floor", pa.int64())]),
            ),
        }
    )
    pq.write_table(table, path, row_group_size=2)  # two batches

    frame = ingest(str(path))

    assert frame["price"].dtype == "float64"
    assert frame["price"].tolist()[::2] == [120172.5, 99000.05] and pd.isna(frame["price"][1])
    assert frame["tags"].tolist() == ['["garden", "garage"]', None, "[]"]
    assert frame["address"].tolist() == ['{"zip": "01234", "floor": 2}', '{"zip": "75001", "floor": null}', None]


def test_parquet_dates_and_timestamps_are_one_text_a_value_whatever_the_rows_beside_them(tmp_path):
    # pandas writes a datetime column as text with its times only when a value of the batch has one: a model fed
    # datetimes answered one row alone differently than beside a 10:30 row.
    path = tmp_path / "dates.parquet"
    frame = pd.DataFrame(
        {
            "day": [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-02 10:30")],
            "date": [datetime.date(2024, 1, 1), None],
            "price": [1.0, 2.0],
        }
    )
    frame.to_parquet(path, index=False)

    read = ingest(str(path))

    assert read["day"].tolist() == ["2024-01-01 00:00:00.000000000", "2024-01-02 10:30:00.000000000"]
    assert read["date"].tolist() == ["2024-01-01", None]


# --- JSON Lines --------------------------------------------------------------------------------------------------


def test_json_lines_keep_strings_that_look_like_numbers_or_dates(tmp_path):
    path = tmp_path / "codes.jsonl"
    path.write_text('{"zip": "01234", "created_at": "2024-01-01"}\n{"zip": "75001", "created_at": "2024-02-01"}\n')

    frame = ingest(str(path))
    assert frame["zip"].tolist() == ["01234", "75001"]
    assert frame["created_at"].tolist() == ["2024-01-01", "2024-02-01"]


def test_json_lines_with_a_byte_order_mark_read(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\n')

    assert ingest(str(path)).to_dict("list") == {"a": [1]}


def test_invalid_json_line_is_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"a": 1}\n{a: 2}\n{"a": 3}\n')

    fails(path, r"line 2 is not valid JSON \(Expecting property name enclosed in double quotes at column 2\)$")


def test_truncated_json_line_is_named(tmp_path):
    path = tmp_path / "cut.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n{"a": ')

    fails(path, r"line 4 is not valid JSON .*it is the last line .* truncated\?")


@pytest.mark.parametrize(("line", "kind"), [("[1, 2]", "array"), ("5", "number"), ('"x"', "string")])
def test_json_line_that_is_not_an_object_is_named(tmp_path, line, kind):
    path = tmp_path / "values.jsonl"
    path.write_text(f'{{"a": 1}}\n{line}\n')

    fails(path, rf"line 2 is a JSON {kind}, not an object")


@pytest.mark.parametrize(
    ("value", "line"), [("18446744073709551616", '{"id": %s}'), ("-9223372036854775809", '{"id": [1, {"b": %s}]}')]
)
def test_json_integer_beyond_64_bits_is_named_with_its_line_and_key(tmp_path, value, line):
    path = tmp_path / "big.jsonl"
    path.write_text('{"id": 1}\n' + line % value + "\n")

    fails(path, rf'line 2, key .id.: the integer {value} is beyond 64 bits .*write it as a string \("{value}"\)')


def test_json_lines_of_arrays_only_are_refused(tmp_path):
    # pandas alone reads them as columns named 0 and 1.
    path = tmp_path / "arrays.jsonl"
    path.write_text("[1, 2]\n[3, 4]\n")

    fails(path, r"line 1 is a JSON array, not an object")


def test_blank_json_lines_are_refused(tmp_path):
    path = tmp_path / "blank.jsonl"
    path.write_text("\n\n")

    fails(path, r"holds only blank lines, no JSON objects")


def test_non_utf8_json_lines_are_refused(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"city": "Z\xfcrich"}\n')

    fails(path, r"is not UTF-8: byte 0xfc at offset 11 \(line 1\) cannot be decoded; JSON Lines files must be UTF-8")


def test_json_lines_of_empty_objects_are_refused_as_without_columns(tmp_path):
    path = tmp_path / "empty_objects.jsonl"
    path.write_text("{}\n{}\n")

    fails(path, r"has no columns: each of its lines is an empty JSON object \{\}$")


# --- metadata ----------------------------------------------------------------------------------------------------


def test_read_source_reports_the_file_and_its_bytes():
    path = corpus("gzipped.csv.gz")

    ingested = read_source(path)

    assert ingested.files == [path]
    assert ingested.bytes == Path(path).stat().st_size  # as stored: the compressed size
    assert ingested.metadata() == {"bytes": ingested.bytes, "file_count": 1, "files": [path]}


def test_sample_reads_no_files():
    ingested = read_source("sample://house-prices?rows=20&seed=1")

    assert (ingested.files, ingested.bytes, len(ingested.frame)) == ([], 0, 20)


def test_options_are_checked_even_when_they_do_not_apply():
    with pytest.raises(IngestError, match=re.escape("csv_encoding 'nope'")):
        read_source("sample://house-prices?rows=20", csv_encoding="nope")
