"""ingest_data reads JSON Lines in blocks (bounded memory): with a tiny block size every case below crosses block
boundaries, and the streamed table must equal one whole-file ``pandas.read_json`` read as ingest made it before it
streamed (``whole_file``), its types, column order and pandas metadata included, and the dataset's content hash must
be that of the whole table."""

from __future__ import annotations

import gzip
import itertools
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from components._common.datasets import content_hash
from components.ingest_data import json_lines
from components.ingest_data.errors import IngestError
from components.ingest_data.logic import ingest_source, read_source

REPO_ROOT = Path(__file__).resolve().parents[3]
BLOCK = 256  # bytes per block: a few lines each


def whole_file(path: Path) -> pa.Table:
    """The file as ingest read JSON Lines before it streamed: one pandas read, columns of several kinds as text."""
    frame = pd.read_json(
        path,
        lines=True,
        encoding="utf-8-sig",
        compression="gzip" if path.read_bytes()[:2] == b"\x1f\x8b" else None,
        dtype=False,
        convert_dates=False,
        precise_float=True,
    )
    for column in frame.columns:
        values = frame[column]
        if values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) in ("mixed", "mixed-integer"):
            present = values.notna()
            frame[column] = values.where(
                ~present, values[present].map(lambda v: v if isinstance(v, str) else json.dumps(v))
            )
        elif values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) == "integer":
            frame[column] = values.astype("float64")  # negative and beyond int64: what pandas' typed read makes
    return pa.Table.from_pandas(frame, preserve_index=False)


def assert_streams_as_whole(tmp_path: Path, path: Path) -> pa.Table:
    expected = whole_file(path)
    streamed = read_source(str(path), block_bytes=BLOCK)
    assert streamed.table.schema.equals(expected.schema, check_metadata=True), (streamed.table.schema, expected.schema)
    assert streamed.table.equals(expected)
    out = tmp_path / "out" / "data.parquet"
    written = ingest_source(str(path), out, block_bytes=BLOCK)
    assert written.info == {
        "rows": expected.num_rows,
        "columns": expected.num_columns,
        "content_sha256": content_hash(expected),
    }
    assert pq.read_table(out).equals(expected)
    assert written.batches > 1  # the case did cross block boundaries
    return streamed.table


def write_lines(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def flats(count: int, start: int = 0) -> list[dict]:
    return [
        {"id": i, "area": i * 1.5, "city": f"city_{i % 7}", "furnished": i % 2 == 0}
        for i in range(start, start + count)
    ]


def count_reads(monkeypatch) -> list:
    """Records each read of a JSON Lines file (from its start)."""
    reads = []
    blocks = json_lines._blocks
    monkeypatch.setattr(json_lines, "_blocks", lambda *args: reads.append(args[0]) or blocks(*args))
    return reads


# --- types decided late ------------------------------------------------------------------------------------------


def test_an_integer_column_with_a_value_missing_only_in_the_last_block_is_float(tmp_path):
    path = write_lines(
        tmp_path / "late_null.jsonl", [*flats(100), {"id": None, "area": 1.0, "city": "x", "furnished": True}]
    )

    table = assert_streams_as_whole(tmp_path, path)

    assert table.schema.field("id").type == pa.float64()
    assert table.column("id").null_count == 1


def test_a_key_first_seen_in_a_late_block_is_a_column_missing_in_earlier_rows(tmp_path):
    late = [{"id": i, "balcony": i % 4, "area": 2.0, "city": "x", "furnished": False} for i in range(100, 130)]
    path = write_lines(tmp_path / "late_key.jsonl", flats(100) + late)

    table = assert_streams_as_whole(tmp_path, path)

    assert table.column_names == ["id", "area", "city", "furnished", "balcony"]  # by first appearance
    assert table.schema.field("balcony").type == pa.float64()  # integers, missing in earlier rows
    assert table.column("balcony").null_count == 100


def test_a_key_first_seen_at_a_block_start_is_read_twice_only(tmp_path, monkeypatch):
    # Lines of 64 bytes, so the blocks of 256 bytes before the key's first line hold no line with it.
    rows = [{"id": i} for i in range(16)] + [{"id": i, "rooms": i % 5} for i in range(16, 32)]
    path = tmp_path / "late_key.jsonl"
    path.write_text("".join(json.dumps(row).ljust(63) + "\n" for row in rows))
    reads = count_reads(monkeypatch)

    table = assert_streams_as_whole(tmp_path, path)

    assert table.schema.field("rooms").type == pa.float64()
    assert len(reads) == 2 * 2  # read_source and ingest_source: one read to learn the columns, one to write them


def test_a_key_absent_from_every_line_of_the_last_blocks_is_missing_there(tmp_path):
    # Lines of 64 bytes, so the blocks of 256 bytes without the key hold no line with it.
    rows = [{"id": i, "flag": i % 3 == 0} for i in range(16)] + [{"id": i} for i in range(16, 32)]
    path = tmp_path / "late_absent.jsonl"
    path.write_text("".join(json.dumps(row).ljust(63) + "\n" for row in rows))

    table = assert_streams_as_whole(tmp_path, path)

    assert table.schema.field("flag").type == pa.bool_()
    assert table.column("flag").null_count == 16


def test_numbers_early_and_a_string_late_become_their_json_text(tmp_path):
    # Early blocks hold integers, floats and nulls: pandas reads a block of them as floats, yet the text of 3 is "3".
    rows = [{"id": i, "rooms": [i, i + 0.5, None][i % 3]} for i in range(100)] + [{"id": 100, "rooms": "three"}]
    path = write_lines(tmp_path / "mixed.jsonl", rows)

    table = assert_streams_as_whole(tmp_path, path)

    assert table.schema.field("rooms").type == pa.string()
    assert table.column("rooms").to_pylist()[:4] == ["0", "1.5", None, "3"]
    assert table.column("rooms")[100].as_py() == "three"


def test_a_boolean_column_with_a_value_missing_late_keeps_python_booleans(tmp_path):
    rows = [*flats(100), {"id": 100, "area": 1.0, "city": "x"}]
    path = write_lines(tmp_path / "late_bool_null.jsonl", rows)

    table = assert_streams_as_whole(tmp_path, path)

    assert table.schema.field("furnished").type == pa.bool_()
    assert table.column("furnished").null_count == 1
    assert json.loads(table.schema.metadata[b"pandas"])["columns"][3]["numpy_type"] == "object"  # as pandas had it


def test_gzip_is_decompressed_across_blocks(tmp_path):
    path = tmp_path / "rows.jsonl.gz"
    rows = [*flats(100), {"id": 100, "area": "big", "city": None, "furnished": None, "note": {"a": [1]}}]
    path.write_bytes(gzip.compress("".join(json.dumps(row) + "\n" for row in rows).encode()))

    table = assert_streams_as_whole(tmp_path, path)

    assert table.column("note")[100].as_py() == '{"a": [1]}'


def test_blank_lines_a_byte_order_mark_and_no_final_line_break(tmp_path):
    text = "\n".join(json.dumps(row) + ("\n\n" if row["id"] % 9 == 0 else "") for row in flats(100))
    path = tmp_path / "loose.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())

    assert assert_streams_as_whole(tmp_path, path).num_rows == 100


def test_keys_in_another_order_on_each_line_keep_the_order_of_first_appearance(tmp_path):
    rows = [dict(reversed(row.items())) if row["id"] % 2 else row for row in flats(100)]
    path = write_lines(tmp_path / "orders.jsonl", [{"a": 1}, *rows])

    table = assert_streams_as_whole(tmp_path, path)

    assert table.column_names == ["a", "id", "area", "city", "furnished"]


def test_windows_line_endings(tmp_path):
    path = tmp_path / "crlf.jsonl"
    path.write_bytes("".join(json.dumps(row) + "\r\n" for row in flats(100)).encode())

    assert_streams_as_whole(tmp_path, path)


def test_empty_objects_before_the_first_key_are_rows_with_every_value_missing(tmp_path):
    path = write_lines(tmp_path / "empty_first.jsonl", [{}] * 80 + flats(20))

    table = assert_streams_as_whole(tmp_path, path)

    assert table.num_rows == 100
    assert table.column("id").null_count == 80


def test_a_glob_of_json_lines_files_with_a_late_widening_in_the_second(tmp_path):
    write_lines(tmp_path / "a.jsonl", flats(60))
    write_lines(tmp_path / "b.jsonl", [*flats(60, 60), {"id": None, "area": 1.0, "city": "x", "furnished": True}])
    expected = pa.concat_tables(
        [whole_file(tmp_path / "a.jsonl"), whole_file(tmp_path / "b.jsonl")], promote_options="permissive"
    )

    streamed = read_source(str(tmp_path / "*.jsonl"), block_bytes=BLOCK)

    assert streamed.table.schema.field("id").type == pa.float64()
    assert streamed.table.to_pandas().equals(expected.to_pandas())


KINDS = {  # a JSON value of each kind pandas types differently
    "int": 7,
    "float": 2.5,
    "bool": True,
    "str": "x",
    "null": None,
    "object": {"k": 1},
    "array": [1, 2],
    "big": 2**63,  # beyond int64: pandas makes a uint64 column
    "negative": -7,  # with a value beyond int64, pandas makes a float64 column
}


@pytest.mark.parametrize(("early", "late"), list(itertools.permutations(KINDS, 2)))
def test_any_late_value_gives_the_type_of_one_whole_file_read(tmp_path, early, late):
    rows = [{"id": i, "value": KINDS[early]} for i in range(60)] + [{"id": 60, "value": KINDS[late]}]
    path = write_lines(tmp_path / "kinds.jsonl", rows)

    assert_streams_as_whole(tmp_path, path)


@pytest.mark.parametrize("late", ["absent", *KINDS])
def test_a_late_value_after_integers_with_a_missing_value_gives_the_whole_file_type(tmp_path, late):
    rows = [{"id": i, "value": None if i == 5 else i} for i in range(60)]
    rows.append({"id": 60} if late == "absent" else {"id": 60, "value": KINDS[late]})
    path = write_lines(tmp_path / "kinds.jsonl", rows)

    assert_streams_as_whole(tmp_path, path)


def test_keys_that_all_look_like_numbers_are_refused_only_when_the_whole_file_has_no_other(tmp_path):
    path = write_lines(tmp_path / "numbers_then_name.jsonl", [{"1": i, "2": i} for i in range(60)] + [{"a": 1}])
    assert assert_streams_as_whole(tmp_path, path).column_names == ["1", "2", "a"]

    path = write_lines(tmp_path / "numbers.jsonl", [{"1": i, "2": i} for i in range(60)])
    with pytest.raises(
        IngestError,
        match=r"as JSON Lines: every key of its objects looks like a number or a date "
        r"\(\['1', '2'\]\): give the columns text names$",
    ):
        read_source(str(path), block_bytes=BLOCK)


def test_a_file_needing_wider_types_is_read_twice_however_many_blocks_change(tmp_path, monkeypatch):
    # Every block adds a key: one read to learn every block's columns, one to write them.
    path = write_lines(tmp_path / "growing.jsonl", [{"id": i, f"k{i // 10}": i} for i in range(100)])
    reads = count_reads(monkeypatch)

    table = assert_streams_as_whole(tmp_path, path)

    assert table.num_columns == 11
    assert len(reads) == 2 * 2  # read_source and ingest_source, two reads each


def test_a_consistent_file_is_read_once(tmp_path, monkeypatch):
    path = write_lines(tmp_path / "flats.jsonl", flats(100))
    reads = count_reads(monkeypatch)

    assert read_source(str(path), block_bytes=BLOCK).table.equals(whole_file(path))
    assert len(reads) == 1


# --- errors in late blocks ---------------------------------------------------------------------------------------


def test_an_invalid_line_in_a_late_block_is_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        "".join(json.dumps(row) + "\n" for row in flats(100)) + "{id: 5}\n" + json.dumps(flats(1)[0]) + "\n"
    )

    with pytest.raises(IngestError, match=r"line 101 is not valid JSON \(Expecting property name .* at column 2\)$"):
        read_source(str(path), block_bytes=BLOCK)


def test_a_truncated_last_line_is_named(tmp_path):
    path = tmp_path / "cut.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in flats(100)) + '{"id": 100, "ar')

    with pytest.raises(IngestError, match=r"line 101 is not valid JSON .*it is the last line .* truncated\?"):
        read_source(str(path), block_bytes=BLOCK)


def test_a_line_that_is_not_an_object_in_a_late_block_is_named(tmp_path):
    path = tmp_path / "array.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in flats(100)) + "[1, 2]\n")

    with pytest.raises(IngestError, match=r"line 101 is a JSON array, not an object"):
        read_source(str(path), block_bytes=BLOCK)


def test_a_byte_order_mark_is_skipped_at_the_start_of_the_file_only(tmp_path):
    # Lines of 64 bytes: the third block of 256 bytes starts with line 9, which starts with a byte-order mark that
    # pandas refuses in a whole-file read.
    lines = [json.dumps({"id": i, "pad": ""}).ljust(63) + "\n" for i in range(20)]
    path = tmp_path / "bom_inside.jsonl"
    path.write_bytes("".join(lines[:8]).encode() + b"\xef\xbb\xbf" + "".join(lines[8:]).encode())

    with pytest.raises(IngestError, match=r"line 9 is not valid JSON \(Unexpected UTF-8 BOM"):
        read_source(str(path), block_bytes=BLOCK)


def test_invalid_utf8_in_a_late_block_names_its_offset(tmp_path):
    head = "".join(json.dumps(row) + "\n" for row in flats(100)).encode()
    path = tmp_path / "bad_bytes.jsonl"
    path.write_bytes(head + b'{"city": "Z\xfcrich"}\n')

    with pytest.raises(IngestError, match=rf"byte 0xfc at offset {len(head) + 11} \(line 101\) cannot be decoded"):
        read_source(str(path), block_bytes=BLOCK)


def test_truncated_gzip_is_reported(tmp_path):
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(gzip.compress("".join(json.dumps(row) + "\n" for row in flats(2000)).encode())[:4000])

    with pytest.raises(IngestError, match=r"its gzip data is corrupt or truncated"):
        read_source(str(path), block_bytes=BLOCK)


# --- memory ------------------------------------------------------------------------------------------------------

INGEST_SCRIPT = r"""
import sys
from pathlib import Path
from components.ingest_data.logic import ingest_source
written = ingest_source(sys.argv[1], sys.argv[2], block_bytes=int(sys.argv[3]))
assert written.info["rows"] == int(sys.argv[4]), written.info
# This process's own peak (VmHWM), not that of the pytest process that started it (see tests/unit/test_memory.py).
print(next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM:")))
"""


def ingest_peak(path: Path, out: Path, rows: int) -> int:
    child = subprocess.run(
        [sys.executable, "-c", INGEST_SCRIPT, str(path), str(out), str(256 * 1024), str(rows)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    return int(child.stdout.strip().splitlines()[-1].split()[1]) * 1024  # "VmHWM:  123456 kB"


def test_peak_memory_does_not_grow_with_the_rows(tmp_path):
    """A file 8 times longer (about 17 MB, which one pandas read of the whole file turned into some 200 MB more
    of Python objects) peaks at the same memory: that of the imports and one 256 kB block."""
    peaks = {}
    for rows in (30_000, 240_000):
        path = tmp_path / f"rows_{rows}.jsonl"
        with path.open("w") as stream:
            for start in range(0, rows, 10_000):
                stream.write("".join(json.dumps(row) + "\n" for row in flats(10_000, start)))
        peaks[rows] = ingest_peak(path, tmp_path / f"rows_{rows}.parquet", rows)

    assert peaks[240_000] < peaks[30_000] + 40 * 1024 * 1024, peaks
