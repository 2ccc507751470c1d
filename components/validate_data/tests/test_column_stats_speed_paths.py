"""The faster paths of ``column_stats`` give what the plain ones give: distinct keys spilled as sorted runs (written,
merged or sorted afresh, and the first keys sorted), dictionary-encoded text counted by index, the chunks of a batch
counted together, the parse results kept per text, and the leakage sample's rows picked by rank."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from components._common.counting import text_value_counts
from components.validate_data import column_stats
from components.validate_data.column_stats import (
    CategoricalStats,
    DistinctKeys,
    Spill,
    gather,
)

# --- distinct keys ---------------------------------------------------------------------------------------------------


def _count(chunks: list[np.ndarray], cap: int, rows: int) -> int:
    with Spill(rows) as spill:
        keys = DistinctKeys(spill, cap)
        for chunk in chunks:
            keys.add(chunk.view(np.uint64).copy())
        counted = keys.count()
        assert keys.count() == counted  # counted once, kept
    return counted


@pytest.mark.parametrize("spill_buffer", [1, 700, 5000, 1 << 19])
@pytest.mark.parametrize("merged_runs", [0, 8, 10_000])
@pytest.mark.parametrize("cap", [0, 50, 20_000])
def test_spilled_keys_are_counted_exactly_however_many_runs(monkeypatch, spill_buffer, merged_runs, cap):
    """Runs written and kept in memory, merged (timsort) or sorted afresh: always the exact count."""
    monkeypatch.setattr(column_stats, "SPILL_BUFFER", spill_buffer)
    monkeypatch.setattr(column_stats, "MERGED_RUNS", merged_runs)
    rng = np.random.default_rng(spill_buffer + merged_runs + cap)
    numbers = np.concatenate([rng.integers(0, 30_000, 40_000), np.arange(-500, 500), rng.integers(-(2**62), 2**62, 99)])
    rng.shuffle(numbers)
    chunks = np.array_split(numbers.astype(np.int64), 17)

    assert _count(chunks, cap, len(numbers)) == len(np.unique(numbers))
    assert _count(chunks, cap, 50 * len(numbers)) == len(np.unique(numbers))  # more partitions than keys


def test_first_keys_past_the_cap_and_empty_chunks_are_counted(monkeypatch):
    monkeypatch.setattr(column_stats, "SPILL_BUFFER", 64)
    rng = np.random.default_rng(1)
    floats = rng.normal(size=3000).round(2)
    floats[:4] = [0.0, -0.0, np.inf, -np.inf]
    keys = (floats + 0.0).view(np.uint64)  # -0.0 as 0.0, as NumericStats keys floats
    chunks = [np.empty(0, dtype=np.uint64), keys[:2500], np.empty(0, dtype=np.uint64), keys[2500:]]

    assert _count(chunks, 10, len(keys)) == len(np.unique(floats + 0.0))
    assert _count([keys[:5], keys[5:]], 10_000, len(keys)) == len(np.unique(floats + 0.0))  # below the cap


def test_spilled_keys_go_to_one_file_removed_once_counted(monkeypatch, tmp_path):
    monkeypatch.setattr(column_stats, "SPILL_BUFFER", 100)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    with Spill(10_000) as spill:
        keys = DistinctKeys(spill, 10)
        for start in range(0, 1000, 50):
            keys.add(np.arange(start, start + 60, dtype=np.uint64))
        (directory,) = tmp_path.iterdir()
        assert len(list(directory.iterdir())) == 1  # every run in one file
        assert keys.count() == 1010
        assert list(directory.iterdir()) == []
        with pytest.raises(RuntimeError, match="added after"):
            keys.add(np.arange(3, dtype=np.uint64))
    assert list(tmp_path.iterdir()) == []


# --- dictionary-encoded text -----------------------------------------------------------------------------------------


def _value_counts(values: pa.DictionaryArray) -> tuple[list, list]:
    counted = pc.value_counts(values)
    uniques = counted.field("values")
    if pa.types.is_dictionary(uniques.type):
        uniques = uniques.dictionary_decode()
    return uniques.to_pylist(), counted.field("counts").to_pylist()


@pytest.mark.parametrize("seed", range(6))
def test_dictionary_counts_equal_value_counts(seed):
    """In order of first appearance, values first seen late in a long batch included, unused entries left out."""
    rng = np.random.default_rng(seed)
    rows = int(rng.integers(1, 200_000))
    dictionary = pa.array([f"value {i}" for i in range(300)])
    indices = rng.choice(40, rows).astype(np.int32)
    late = rng.integers(0, rows, 3)  # a few rare values, anywhere (most often past the first prefix)
    indices[late] = [100, 200, 299]
    values = pa.DictionaryArray.from_arrays(pa.array(indices), dictionary)

    uniques, counts = text_value_counts(values)

    assert (uniques.tolist(), counts.tolist()) == _value_counts(values)


def test_a_dictionary_repeating_a_value_is_counted_by_value():
    dictionary = pa.array(["a", "b", "a", "c"])
    values = pa.DictionaryArray.from_arrays(pa.array([0, 2, 1, 2, 3, 0], pa.int8()), dictionary)
    with Spill(6) as spill:
        stats = CategoricalStats(np.dtype(object), spill, cap=100)
        stats.update_arrow(values)
        stats.finish()

    assert stats.texts.keys.tolist() == ["a", "b", "c"]
    assert stats.texts.counts.tolist() == [4, 1, 1]


def _chunked(dictionaries: list[list[str]], rng) -> pa.ChunkedArray:
    chunks = []
    for dictionary in dictionaries:
        indices = pa.array(rng.integers(0, len(dictionary), 400), pa.int32())
        valid = pa.array(rng.random(400) > 0.05)
        chunks.append(pa.DictionaryArray.from_arrays(pc.if_else(valid, indices, None), pa.array(dictionary)))
    return pa.chunked_array(chunks)


@pytest.mark.parametrize("cap", [3, 8, 12, 30, 1000])
def test_chunks_counted_together_give_what_counting_them_one_by_one_gives(cap):
    """Below the cap the chunks of a batch are counted together; a batch that could pass the cap between its chunks
    (where the heavy-hitter summary prunes) is counted chunk by chunk, as before."""
    rng = np.random.default_rng(cap)
    texts = [f"t{i}" if i % 3 else f" {i} " for i in range(20)]  # some parse as numbers
    batches = [_chunked([texts[:5], texts[3:9], texts[:2]], rng), _chunked([texts[8:14], texts[12:20]], rng)]

    def stats_of(split: bool) -> dict:
        with Spill(4000) as spill:
            stats = CategoricalStats(np.dtype(object), spill, cap, present_total=2000, target=True)
            for batch in batches:
                for part in batch.chunks if split else [batch]:
                    stats.update_arrow(part)
            stats.finish()
            return {
                "texts": (stats.texts.keys.tolist(), stats.texts.counts.tolist()),
                "exact": stats.texts.exact,
                "schema": stats.schema_column(),
                "rows": (stats.rows, stats.nulls, stats.parsed, stats.bad_examples, stats.first_texts),
                "sample": stats.uuid_sample.tolist(),
            }

    assert stats_of(split=False) == stats_of(split=True)


# --- parse results kept per text -------------------------------------------------------------------------------------


@pytest.mark.parametrize("cap", [5, 60, 10_000])
def test_parsed_counts_and_examples_equal_the_whole_columns(monkeypatch, cap):
    """Texts parsed once while the counts are exact, every batch once past the cap: the same counts either way."""
    monkeypatch.setattr(column_stats, "DISTINCT_CAP", cap)
    rng = np.random.default_rng(cap)
    words = np.array(["1", " 2 ", "3.5", "x", "1e3", "n/a", "", "-7"] + [f"{i}" for i in range(100)], dtype=object)
    mixed = pd.Series(words[rng.integers(0, len(words), 2000)], dtype=object)
    frame = pd.DataFrame({"mixed": mixed, "price": rng.normal(size=2000)})
    whole = column_stats.series_stats(mixed)

    with Spill(len(frame)) as spill:
        batches = (frame.iloc[start : start + 37] for start in range(0, len(frame), 37))
        stats, _ = gather(batches, frame.dtypes.to_dict(), dict.fromkeys(frame, 0), len(frame), "price", spill)
    streamed = stats["mixed"]

    assert (streamed.parsed, streamed.bad_examples) == (whole.parsed, whole.bad_examples)
    expected = int(pd.to_numeric(mixed.str.strip(), errors="coerce").notna().sum())
    assert streamed.parsed == expected


# --- the leakage sample's rows ---------------------------------------------------------------------------------------


def test_sample_rows_are_the_labelled_rows_of_the_ranks():
    rng = np.random.default_rng(7)
    rows = 1000
    target = rng.normal(size=rows)
    target[rng.random(rows) < 0.3] = np.nan
    frame = pd.DataFrame({"x": np.arange(rows), "y": target})
    labelled = frame[frame["y"].notna()].reset_index(drop=True)
    sample = np.sort(rng.choice(len(labelled), 120, replace=False))
    sample = np.union1d(sample, [0, len(labelled) - 1])  # the first and last labelled rows too

    with Spill(rows) as spill:
        batches = (frame.iloc[start : start + 64] for start in range(0, rows, 64))
        nulls = frame.isna().sum().to_dict()
        _, picked = gather(batches, frame.dtypes.to_dict(), nulls, rows, "y", spill, sample=sample)

    pd.testing.assert_frame_equal(picked, labelled.iloc[sample].reset_index(drop=True))
