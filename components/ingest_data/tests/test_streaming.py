"""ingest_data reads in blocks (bounded memory): with a tiny block size every case below crosses block boundaries,
and the streamed result must equal one whole-file pyarrow read with the same options (what ingest read before it
streamed), its types included, and the dataset's content hash must be that of the whole table."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from components._common.datasets import DatasetWriter, content_hash, write_dataset
from components.ingest_data import csv_format
from components.ingest_data.errors import IngestError
from components.ingest_data.logic import ingest_source, read_source

BLOCK = 256  # bytes per block: a few rows each


def whole_file(path: Path, encoding: str = "utf8", compression: str | None = None) -> pa.Table:
    """The file as one pyarrow read with ingest's options, dates as text and empty columns as float64."""
    parse = pa_csv.ParseOptions(newlines_in_values=True)
    read = pa_csv.ReadOptions(encoding=encoding)
    options = {
        "null_values": csv_format.PANDAS_NA_VALUES,
        "strings_can_be_null": True,
        "true_values": csv_format.PANDAS_TRUE_VALUES,
        "false_values": csv_format.PANDAS_FALSE_VALUES,
    }
    with pa.input_stream(str(path), compression=compression) as stream:
        table = pa_csv.read_csv(stream, read, parse, pa_csv.ConvertOptions(**options))
    types = {
        field.name: pa.string() if pa.types.is_temporal(field.type) else field.type
        for field in table.schema
        if pa.types.is_temporal(field.type)
    }
    if types:
        with pa.input_stream(str(path), compression=compression) as stream:
            table = pa_csv.read_csv(stream, read, parse, pa_csv.ConvertOptions(column_types=types, **options))
    return table.cast(
        pa.schema([pa.field(f.name, pa.float64() if pa.types.is_null(f.type) else f.type) for f in table.schema])
    )


def assert_streams_as_whole(tmp_path: Path, path: Path, expected: pa.Table, **options) -> pa.Table:
    streamed = read_source(str(path), block_bytes=BLOCK, **options)
    assert streamed.table.schema.equals(expected.schema), (streamed.table.schema, expected.schema)
    assert streamed.table.equals(expected)
    written = ingest_source(str(path), tmp_path / "out" / "data.parquet", block_bytes=BLOCK, **options)
    assert written.info == {"rows": expected.num_rows, "columns": expected.num_columns, **_hash(expected)}
    assert pq.read_table(tmp_path / "out" / "data.parquet").equals(expected)
    assert written.batches > 1  # the case did cross block boundaries
    return streamed.table


def _hash(table: pa.Table) -> dict:
    return {"content_sha256": content_hash(table)}


def numbered_rows(count: int, start: int = 0) -> str:
    return "".join(f"{i},{i * 1.5},city_{i % 7}\n" for i in range(start, start + count))


# --- types decided late ------------------------------------------------------------------------------------------


def test_text_first_seen_in_a_late_block_widens_the_column_to_text(tmp_path):
    path = tmp_path / "late_text.csv"
    path.write_text("rooms,area,city\n" + numbered_rows(200) + "many,5.0,Lyon\n" + numbered_rows(10, 200))

    table = assert_streams_as_whole(tmp_path, path, whole_file(path))

    assert table.schema.field("rooms").type == pa.string()
    assert table.column("rooms")[200].as_py() == "many"


def test_a_column_empty_in_the_first_blocks_takes_the_type_of_later_numbers(tmp_path):
    rows = [f"{i},,x{i}\n" for i in range(150)] + [f"{i},{i * 2},y\n" for i in range(150, 160)]
    path = tmp_path / "late_numbers.csv"
    path.write_text("id,floor,tag\n" + "".join(rows))

    table = assert_streams_as_whole(tmp_path, path, whole_file(path))

    assert table.schema.field("floor").type == pa.int64()
    assert table.column("floor").null_count == 150


def test_a_column_empty_everywhere_is_float_and_integers_widen_to_floats(tmp_path):
    rows = [f"{i},,{i}\n" for i in range(150)] + ["150,,2.5\n"]
    path = tmp_path / "empty_column.csv"
    path.write_text("id,nothing,value\n" + "".join(rows))

    table = assert_streams_as_whole(tmp_path, path, whole_file(path))

    assert table.schema.field("nothing").type == pa.float64()
    assert table.schema.field("value").type == pa.float64()


def test_dates_stay_text_and_booleans_then_text_become_text(tmp_path):
    rows = [f"2024-01-{i % 28 + 1:02d},{'True' if i % 2 else 'False'}\n" for i in range(120)] + ["2024-02-01,maybe\n"]
    path = tmp_path / "dates.csv"
    path.write_text("day,flag\n" + "".join(rows))

    table = assert_streams_as_whole(tmp_path, path, whole_file(path))

    assert table.schema.field("day").type == pa.string()
    assert table.schema.field("flag").type == pa.string()


# --- record boundaries and encodings -----------------------------------------------------------------------------


def test_quoted_values_with_line_breaks_straddle_block_cuts(tmp_path):
    rows = [f'{i},"line one of {i}\nline ""two""\nthree, with a comma",{i % 3}\n' for i in range(80)]
    path = tmp_path / "multiline.csv"
    path.write_text("id,note,group\n" + "".join(rows))

    table = assert_streams_as_whole(tmp_path, path, whole_file(path))

    assert table.num_rows == 80
    assert table.column("note")[79].as_py() == 'line one of 79\nline "two"\nthree, with a comma'


def test_a_value_longer_than_a_block_grows_the_block(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("id,text\n" + "".join(f'{i},"{"x" * (3 * BLOCK)}\n{i}"\n' for i in range(5)))

    table = assert_streams_as_whole(tmp_path, path, whole_file(path))

    assert table.column("text").to_pylist()[4] == "x" * (3 * BLOCK) + "\n4"


def test_windows_line_endings(tmp_path):
    path = tmp_path / "crlf.csv"
    path.write_bytes(("rooms,area,city\r\n" + numbered_rows(100)).replace("\n", "\r\n").encode())

    assert_streams_as_whole(tmp_path, path, whole_file(path))


@pytest.mark.parametrize(("encoding", "arrow_encoding"), [("utf-16", "utf-16"), ("latin-1", "latin1")])
def test_other_encodings_are_decoded_across_blocks(tmp_path, encoding, arrow_encoding):
    rows = [f"{i},Zürich-Málaga-{i},{i / 4}\n" for i in range(120)]
    path = tmp_path / f"{encoding}.csv"
    path.write_bytes(("id,city,score\n" + "".join(rows)).encode(encoding))

    table = assert_streams_as_whole(tmp_path, path, whole_file(path, arrow_encoding), csv_encoding=encoding)

    assert table.column("city")[119].as_py() == "Zürich-Málaga-119"


def test_gzip_is_decompressed_across_blocks(tmp_path):
    path = tmp_path / "rows.csv.gz"
    path.write_bytes(gzip.compress(("rooms,area,city\n" + numbered_rows(300)).encode()))

    assert_streams_as_whole(tmp_path, path, whole_file(path, compression="gzip"))


# --- errors in late blocks ---------------------------------------------------------------------------------------


def test_a_short_row_in_the_last_block_names_its_physical_line(tmp_path):
    path = tmp_path / "truncated.csv"
    path.write_text('rooms,area,city\n1,"two\nlines",x\n' + numbered_rows(200) + "7,1.5")

    with pytest.raises(IngestError) as raised:
        read_source(str(path), block_bytes=BLOCK)

    assert str(raised.value) == (
        f"input file '{path}': line 204 has 2 field(s) but the header has 3; the file ends in the middle of that "
        "line, so it looks truncated"
    )


def test_an_unclosed_quote_at_the_end_is_reported(tmp_path):
    path = tmp_path / "unclosed.csv"
    path.write_text("rooms,area,city\n" + numbered_rows(200) + '7,1.5,"Lyon\n8,2.5,Porto\n')

    with pytest.raises(IngestError, match=r"the quoted value in the record starting on line 202 never closes"):
        read_source(str(path), block_bytes=BLOCK)


def test_an_unclosed_quote_early_is_found_before_the_rest_of_the_file_is_held(tmp_path, monkeypatch):
    path = tmp_path / "unclosed_early.csv"
    path.write_text('rooms,area,city\n1,2,"Lyon\n' + numbered_rows(2000))
    checked: list[int] = []
    check = csv_format._check_quotes_close
    monkeypatch.setattr(csv_format, "_check_quotes_close", lambda *args: checked.append(1) or check(*args))

    with pytest.raises(IngestError, match=r"the quoted value in the record starting on line 2 never closes"):
        read_source(str(path), block_bytes=BLOCK)

    assert checked == [1]  # raised once the uncut block passed MAX_UNCUT_BLOCKS blocks, not at the end of the file


def test_invalid_utf8_in_a_late_block_names_its_offset(tmp_path):
    head = ("rooms,area,city\n" + numbered_rows(100)).encode()
    path = tmp_path / "bad_bytes.csv"
    path.write_bytes(head + b"5,1.0,Z\xfcrich\n" + numbered_rows(5).encode())

    with pytest.raises(IngestError, match=rf"byte 0xfc at offset {len(head) + 7} \(line 102\) cannot be decoded"):
        read_source(str(path), block_bytes=BLOCK)


# --- several files -----------------------------------------------------------------------------------------------


def test_a_second_file_that_widens_a_type_restarts_the_output(tmp_path):
    (tmp_path / "a.csv").write_text("rooms,area,city\n" + numbered_rows(100))
    (tmp_path / "b.csv").write_text("city,rooms,area\n" + "".join(f"c{i},{i + 0.5},{i}\n" for i in range(100)))
    (tmp_path / "c.csv").write_text("rooms,area,city\n" + numbered_rows(50))
    frames = [pd.read_csv(tmp_path / name)[["rooms", "area", "city"]] for name in ("a.csv", "b.csv", "c.csv")]
    expected = pd.concat(frames, ignore_index=True)  # what ingest gave before it streamed: pandas' concat

    streamed = read_source(str(tmp_path / "*.csv"), block_bytes=BLOCK)
    written = ingest_source(str(tmp_path / "*.csv"), tmp_path / "out.parquet", block_bytes=BLOCK)

    pd.testing.assert_frame_equal(streamed.frame, expected)
    assert streamed.table.schema.field("rooms").type == pa.float64()
    assert written.info["content_sha256"] == content_hash(streamed.table)
    pd.testing.assert_frame_equal(pq.read_table(tmp_path / "out.parquet").to_pandas(), expected)


def test_a_late_block_of_a_second_file_with_another_kind_is_named(tmp_path):
    (tmp_path / "a.csv").write_text("rooms,area,city\n" + numbered_rows(100))
    (tmp_path / "b.csv").write_text("rooms,area,city\n" + numbered_rows(100) + "many,1.0,x\n")

    with pytest.raises(IngestError, match=r"column 'rooms' holds text in .*b\.csv' but numbers in .*a\.csv'"):
        ingest_source(str(tmp_path / "*.csv"), tmp_path / "out.parquet", block_bytes=BLOCK)

    assert not (tmp_path / "out.parquet").exists()  # a failed ingest leaves no partial dataset


# --- the writer --------------------------------------------------------------------------------------------------


def test_the_streamed_hash_is_the_whole_tables_for_any_batching(tmp_path):
    rng = np.random.default_rng(4)
    frame = pd.DataFrame(
        {
            "x": np.where(rng.random(500) < 0.1, np.nan, rng.normal(size=500)),
            "s": pd.Series(rng.choice(["a", "bb", None, "ccc"], 500), dtype=object),
            "b": rng.random(500) < 0.5,
            "i": rng.integers(0, 9, 500),
        }
    )
    table = pa.Table.from_pandas(frame, preserve_index=False)
    expected = write_dataset(frame, tmp_path / "whole.parquet")
    assert expected["content_sha256"] == content_hash(table)
    for rows in (1, 7, 128, 500):
        with DatasetWriter(tmp_path / f"by_{rows}.parquet") as writer:
            for batch in table.to_batches(max_chunksize=rows):
                writer.write(batch)
        assert writer.info == expected
        assert pq.read_table(tmp_path / f"by_{rows}.parquet").equals(table)
        assert writer.batches == -(-500 // rows)


def test_a_failed_write_leaves_no_file(tmp_path):
    table = pa.table({"a": [1, 2, 3]})
    with pytest.raises(ValueError, match="differs"), DatasetWriter(tmp_path / "x.parquet") as writer:
        writer.write(table)
        writer.write(pa.table({"b": ["x"]}))
    assert not (tmp_path / "x.parquet").exists()


def test_memory_is_bounded_by_the_block_not_by_the_rows(tmp_path):
    """Not a timed or RSS assertion: what the writer holds at once stays the same when the file is 10 times longer,
    while the number of batches grows with it."""
    held = {}
    for rows in (1_000, 10_000):
        path = tmp_path / f"rows_{rows}.csv"
        path.write_text("rooms,area,city\n" + numbered_rows(rows))
        written = ingest_source(str(path), tmp_path / f"rows_{rows}.parquet", block_bytes=4096)
        assert written.info["rows"] == rows
        held[rows] = (written.batches, written.peak_buffered_bytes)
    (few, few_held), (many, many_held) = held[1_000], held[10_000]
    assert many > 8 * few
    # At most three batches (one written, one queued, one being handed over) of one block's rows each (a row of
    # this file is at least 13 bytes, so at most 4096 / 13 < 400 rows), however many rows the file has.
    batch_bytes = pa.table({"r": [1] * 400, "a": [1.0] * 400, "c": ["city_0"] * 400}).nbytes
    assert 0 < few_held <= 3 * batch_bytes
    assert 0 < many_held <= 3 * batch_bytes


def test_a_container_too_small_for_one_block_stops_before_reading_on(tmp_path, monkeypatch):
    from components._common import memory

    path = tmp_path / "rows.csv"
    path.write_text("rooms,area,city\n" + numbered_rows(100))
    monkeypatch.setattr(memory, "memory_limit", lambda *args: 300 * memory.MB)

    with pytest.raises(memory.MemoryBudgetError, match=r"ingest_data needs about \d+ MB for 3 columns .*300 MB"):
        ingest_source(str(path), tmp_path / "out.parquet")

    assert not (tmp_path / "out.parquet").exists()
    monkeypatch.setattr(memory, "memory_limit", lambda *args: 1024 * memory.MB)  # the pipeline's default: 1Gi
    assert ingest_source(str(path), tmp_path / "out.parquet").info["rows"] == 100


def test_a_wide_file_fits_the_default_container(tmp_path, monkeypatch):
    """Thousands of columns (one-hot or sensor data) fit the pipeline's default 1Gi: a column costs its encoder's
    fixed buffers, not a whole data page (which refused any file of more than about 460 columns)."""
    from components._common import memory

    columns = 3_000
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"f{i}" for i in range(columns)) + "\n" + ",".join(["1.5"] * columns) + "\n")
    monkeypatch.setattr(memory, "memory_limit", lambda *args: 1024 * memory.MB)

    assert ingest_source(str(path), tmp_path / "out.parquet").info["columns"] == columns


def test_a_failure_of_the_writer_thread_reaches_the_caller_and_leaves_no_file(tmp_path, monkeypatch):
    def broken(self, data):
        raise OSError("disk full")

    monkeypatch.setattr(DatasetWriter, "_write_parquet", broken)
    with pytest.raises(OSError, match="disk full"), DatasetWriter(tmp_path / "x.parquet") as writer:
        for start in range(0, 50, 5):
            writer.write(pa.table({"a": list(range(start, start + 5))}))
    assert not (tmp_path / "x.parquet").exists()


@pytest.mark.parametrize(
    ("early", "late"),
    [
        ("True", "1"),
        ("1", "False"),
        ("1", "2024-01-01"),
        ("2024-01-01", "7"),
        ("", "2024-01-01 10:00:00"),
        ("1.5", "2"),
        ("False", ""),
        ("12:30:00", "x"),
        ("9223372036854775807", "1.5"),
        # Not ("9223372036854775807", "99999999999999999999"): pyarrow's floats would drop digits; that column is text
        # (test_formats.py, whole numbers beyond int64).
    ],
)
def test_any_late_value_gives_the_type_of_one_whole_file_inference(tmp_path, early, late):
    path = tmp_path / "types.csv"
    path.write_text("id,value\n" + "".join(f"{i},{early}\n" for i in range(100)) + f"100,{late}\n")

    assert_streams_as_whole(tmp_path, path, whole_file(path))
