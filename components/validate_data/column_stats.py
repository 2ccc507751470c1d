"""Per-column statistics of a dataset gathered batch by batch: what validate_data needs of the whole data (the schema
``model_bundle.schema.infer`` gives, the data checks' counts and examples, the identifier and leakage inputs, the
comparison with a reference schema) in memory bounded by the batch size and the distinct values kept, not the rows.

Batches are pandas frames with the whole data's dtypes (``components._common.datasets.read_batches``, or slices of
a frame), in row order. The statistics merge batch by batch and end equal to what the whole frame gives:

- counts, missing values, minimum and maximum, infinite values, the kind of values: exact;
- distinct values: exact. While a column has at most ``DISTINCT_CAP`` distinct values they are kept in memory
  with their counts in order of first appearance, sorted as ``value_counts`` sorts them (ties included), so
  categories, domains and the domain check's examples are the whole frame's exactly. Past the cap, 64-bit keys of
  the values are spilled to a temporary file (sorted runs, see ``DistinctKeys``) and counted partition by partition
  at the end: numbers by their own bits (integers as they are; floats with -0.0 as 0.0), so their count is exact;
  text by a 64-bit hash (``pd.util.hash_array``), exact up to hash collisions (probability about n^2 / 2^65 for n
  distinct values: under 1e-5 for 10 million). An object column of other Python values (numbers, booleans) that
  passes the cap is counted by its texts, as text.
- past the cap, the counts per value are a bounded summary of the most frequent values (heavy hitters: counts are
  kept for at most 2 x ``DISTINCT_CAP`` values, pruned to the ``DISTINCT_CAP`` most frequent whenever it grows past
  that), so a column's ``categories`` (its 50 most frequent values) and the domain check's examples are then the
  most frequent ones that summary saw, not necessarily the exact top 50 (a value is dropped when its count so far
  is not among the ``DISTINCT_CAP`` highest at a pruning, and counted afresh when it comes again). Below the cap,
  and for any column with a domain (at most 50 values), they are exact.
- the examples of a check (the first values that are not numbers, the lowest and highest values outside a range):
  the same as the whole frame gives, kept as a handful per column.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from components._common.cleaning import to_numbers
from components._common.counting import (
    DISTINCT_CAP,
    merge_counts,
    most_frequent,
    ordered_counts,
    text_value_counts,
)
from components.validate_data.identifiers import uuid_sample_step
from model_bundle import NUMERIC
from model_bundle import schema as schema_contract
from model_bundle.features import CATEGORICAL

# DISTINCT_CAP: distinct values per column kept in memory with their counts; well above MAX_DOMAIN (50), so every
# column with a domain, and every column a user reads category by category, is exact.
# Spilled keys buffered per column before they are written out: 4 MB, so a write is a few large appends.
SPILL_BUFFER = 1 << 19
# Keys per spill partition aimed at: each is read and counted alone at the end (8 MB).
PARTITION_KEYS = 1 << 20
# Sorted runs of a partition up to which they are merged (timsort) rather than sorted afresh at the end.
MERGED_RUNS = 8
_MIX = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: spreads integer keys (e.g. 1..n) over the partitions
_EXAMPLES = 3  # the data checks' examples (the first values that are not numbers, the first texts)


class Spill:
    """The temporary directory distinct-value keys past the cap go to, created on first use, removed by ``close``.

    ``rows``: the dataset's rows, to choose how many partitions keep each one small enough to count in memory.
    """

    def __init__(self, rows: int):
        self.bits = max(4, math.ceil(math.log2(max(rows, 1) / PARTITION_KEYS)))
        # Where each partition but the first starts among sorted mixed keys: the top ``bits`` bits are the partition.
        self.edges = np.arange(1, 1 << self.bits, dtype=np.uint64) << np.uint64(64 - self.bits)
        self._directory: tempfile.TemporaryDirectory | None = None
        self._files = 0

    def prefix(self) -> Path:
        if self._directory is None:
            self._directory = tempfile.TemporaryDirectory(prefix="validate_data-")
        self._files += 1
        return Path(self._directory.name) / f"keys{self._files}"

    def close(self) -> None:
        if self._directory is not None:
            self._directory.cleanup()
            self._directory = None

    def __enter__(self) -> Spill:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class DistinctKeys:
    """The exact number of distinct 64-bit keys added: in memory while at most ``cap``, then in a file.

    Past the cap, keys are buffered and written as runs: each run mixed (multiplied by an odd constant, a bijection
    of 64-bit integers: distinct keys stay distinct, and integer keys such as 1..n spread evenly), sorted, without
    repeats. A mixed key's top bits are its partition, so a run holds the partitions one after another: at the end
    each partition is read from every run and counted alone, in memory bounded by its size.
    """

    def __init__(self, spill: Spill, cap: int):
        self._spill, self._cap = spill, cap
        self._known = np.empty(0, dtype=np.uint64)  # None once spilled
        self._path: Path | None = None
        # Each written run's partition bounds in the file, in keys: (rows / SPILL_BUFFER) x 2^bits of them in all,
        # about 10 KB at 20 million rows.
        self._runs: list[np.ndarray] = []
        self._written = 0
        self._buffer: list[np.ndarray] = []
        self._buffered = 0
        self._counted: int | None = None

    def add(self, keys: np.ndarray) -> None:
        if self._counted is not None:
            raise RuntimeError("keys added after the spilled keys were counted")
        if self._known is not None:
            if not len(self._known):
                # The first keys: sorted, as a column of mostly distinct values (soon past the cap) is counted
                # faster by sorting than by hashing, and one sort costs little for a column with few values.
                merged = _sorted_distinct(keys.copy())
            else:
                # Arrow's hash unique: faster than pandas' on the repeated numbers of a column with few values.
                merged = pd.unique(np.concatenate([self._known, pc.unique(pa.array(keys)).to_numpy()]))
            if len(merged) <= self._cap:
                self._known = merged
                return
            self._known, keys = None, merged
        self._buffer.append(keys)
        self._buffered += len(keys)
        if self._buffered >= SPILL_BUFFER:
            run = self._run()
            self._path = self._path or self._spill.prefix()
            with open(self._path, "ab") as stream:
                run.tofile(stream)
            self._runs.append(self._written + self._bounds(run))
            self._written += len(run)

    def _run(self) -> np.ndarray:
        """The buffered keys mixed, sorted, without repeats; the buffer emptied."""
        keys = np.concatenate([np.empty(0, dtype=np.uint64), *self._buffer])  # a copy: mixed and sorted in place
        self._buffer, self._buffered = [], 0
        return _sorted_distinct(np.multiply(keys, _MIX, out=keys))

    def _bounds(self, run: np.ndarray) -> np.ndarray:
        """Where each partition of ``run`` starts, and where the last ends."""
        return np.concatenate([[0], np.searchsorted(run, self._spill.edges), [len(run)]]).astype(np.int64)

    def count(self) -> int:
        """The distinct keys added; the spilled ones are counted (and their file removed) once, at the first call."""
        if self._counted is not None:
            return self._counted
        if self._known is not None:
            return len(self._known)
        last = self._run()  # counted from memory, not written
        last_bounds = self._bounds(last)
        total = 0
        with open(self._path, "rb") if self._runs else contextlib.nullcontext() as stream:
            for part in range(len(last_bounds) - 1):
                # A key lands in one partition only, so the partitions' counts add up.
                spans = [(bounds[part], bounds[part + 1]) for bounds in self._runs if bounds[part + 1] > bounds[part]]
                tail = last[last_bounds[part] : last_bounds[part + 1]]
                runs = len(spans) + (len(tail) > 0)
                keys = np.empty(sum(end - start for start, end in spans) + len(tail), dtype=np.uint64)
                at = 0
                for start, end in spans:
                    stream.seek(int(start) * 8)
                    if stream.readinto(memoryview(keys[at : at + end - start]).cast("B")) != (end - start) * 8:
                        raise OSError(f"{self._path}: spilled keys cut short")
                    at += end - start
                keys[at:] = tail
                if runs > 1:  # one run's keys are distinct already
                    # Timsort merges a few sorted runs in linear passes; many are sorted afresh, faster.
                    keys.sort(kind="stable" if runs <= MERGED_RUNS else None)
                    total += 1 + int(np.count_nonzero(keys[1:] != keys[:-1]))
                else:
                    total += len(keys)
        if self._runs:
            self._path.unlink()
        self._runs = []
        self._counted = total  # the keys are gone: no more may be added
        return total


def _sorted_distinct(keys: np.ndarray) -> np.ndarray:
    """``keys`` sorted in place, without repeats (a new array only when there are some)."""
    keys.sort()
    if len(keys) > 1:
        repeats = keys[1:] == keys[:-1]
        if repeats.any():
            keys = keys[np.concatenate([[True], ~repeats])]
    return keys


def _hash(values: np.ndarray) -> np.ndarray:
    """64-bit hashes of distinct values: ``categorize=False`` skips factorizing them again (the same hashes)."""
    return pd.util.hash_array(np.asarray(values), categorize=False)


class ValueCounts:
    """Occurrences per value in order of first appearance; exact while at most ``cap`` distinct values, then the
    distinct count exact from spilled hashes and the counts a heavy-hitters summary (see the module docstring)."""

    def __init__(self, spill: Spill, cap: int):
        self._spill, self._cap = spill, cap
        self.keys: pd.Index | None = None
        self.counts = np.empty(0, dtype=np.int64)
        self.spilled: DistinctKeys | None = None

    @property
    def exact(self) -> bool:
        return self.spilled is None

    def add(self, uniques: np.ndarray, counts: np.ndarray) -> None:
        """``uniques``: a batch's distinct values in order of appearance, ``counts`` their occurrences."""
        if not len(uniques):
            return
        self.keys, self.counts = merge_counts(self.keys, self.counts, uniques, counts)
        if self.spilled is not None:
            self.spilled.add(_hash(uniques))
            if len(self.keys) > 2 * self._cap:
                self.keys, self.counts = most_frequent(self.keys, self.counts, self._cap)
        elif len(self.keys) > self._cap:
            self.spilled = DistinctKeys(self._spill, cap=0)
            self.spilled.add(_hash(self.keys.to_numpy()))

    def distinct(self) -> int:
        if self.keys is None:
            return 0
        return len(self.keys) if self.spilled is None else self.spilled.count()

    def ordered(self) -> tuple[pd.Index, np.ndarray]:
        """Values and counts as ``value_counts`` orders them: most frequent first."""
        if self.keys is None:
            return pd.Index([], dtype=object), np.empty(0, dtype=np.int64)
        return ordered_counts(self.keys, self.counts)


def _merge_labels(labels: set[str]) -> str:
    """``pd.api.types.infer_dtype`` of a whole column from its batches' (an empty batch says nothing)."""
    labels = labels - {"empty"}
    if not labels:
        return "empty"
    if len(labels) == 1:
        return next(iter(labels))
    if labels <= {"integer", "floating", "mixed-integer-float"}:
        return "mixed-integer-float"
    if labels <= {"date", "datetime", "datetime64"}:
        return "date" if "date" in labels else "datetime"
    return "mixed"


def _kind(label: str) -> str:
    """``schema.kind_of``'s mapping of an ``infer_dtype`` label."""
    return schema_contract.kind_of_label(label)


def is_numeric_dtype(dtype) -> bool:
    """How ``model_bundle.features.infer_feature_types`` types a column: numbers but not booleans are numeric."""
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


class ColumnStats:
    """What one column's batches add up to. ``present_total``: the column's present values in the whole data (for
    the identifier check's strided sample); ``target``: the column is the target (its first values are kept)."""

    def __init__(self, dtype, spill: Spill, cap: int, present_total: int = 0, target: bool = False):
        self.dtype = dtype
        self.rows = 0
        self.nulls = 0
        self.target = target
        self.first_value = None  # the first present value, as pandas gives it
        self._spill, self._cap = spill, cap
        self._present_total = present_total

    @property
    def present(self) -> int:
        return self.rows - self.nulls

    @property
    def numeric(self) -> bool:
        return is_numeric_dtype(self.dtype)


class NumericStats(ColumnStats):
    """A numeric column: range, distinct values, infinite values, and values outside a reference range."""

    def __init__(self, dtype, spill: Spill, cap: int, present_total: int = 0, target: bool = False, bounds=None):
        super().__init__(dtype, spill, cap, present_total, target)
        self.kind = "integer" if pd.api.types.is_integer_dtype(dtype) else "float"
        self.low = self.high = None
        self.infinite = 0
        self.integral = True  # every present value is a whole number (resolve_task)
        self._distinct = DistinctKeys(spill, cap)
        self.bounds = bounds  # (low, high) of the reference schema, or None
        self.outside = 0
        self._outside = None  # the lowest and highest values outside ``bounds`` (``_extremes`` needs no more)

    def update(self, values: pd.Series) -> None:
        self.rows += len(values)
        if isinstance(values.dtype, np.dtype):
            array = values.to_numpy()
            missing = np.isnan(array) if array.dtype.kind == "f" else None
        else:  # a pandas extension dtype (Int64, Float64) holds its own missing values
            missing = values.isna().to_numpy()
            array = values.to_numpy(dtype="int64" if self.kind == "integer" else "float64", na_value=0)
        if missing is not None and missing.any():
            self.nulls += int(missing.sum())
            present = array[~missing]
        else:
            present = array
        if not len(present):
            return
        if self.first_value is None and self.target:
            self.first_value = values.dropna().iloc[0]
        low, high = present.min(), present.max()
        self.low = low if self.low is None or low < self.low else self.low
        self.high = high if self.high is None or high > self.high else self.high
        if present.dtype.kind == "f":
            self._distinct.add((present.astype("float64", copy=False) + 0.0).view(np.uint64))  # -0.0 is 0.0
            if not (np.isfinite(low) and np.isfinite(high)):  # else no value is infinite
                self.infinite += int(np.isinf(present).sum())
            if self.target and self.integral:
                self.integral = bool((present == np.round(present)).all())
        else:
            self._distinct.add(present.astype("uint64" if present.dtype.kind == "u" else "int64").view(np.uint64))
        if self.bounds is not None:
            numbers = present.astype("float64", copy=False)
            outside = (numbers < self.bounds[0]) | (numbers > self.bounds[1])
            if outside.any():
                self.outside += int(outside.sum())
                self._outside = _keep_extremes(self._outside, present[outside])

    def finish(self) -> None:
        self.distinct = self._distinct.count()

    def outside_examples(self) -> pd.Series:
        """The values outside ``bounds`` that ``schema._extremes`` picks from: the five lowest and five highest."""
        return pd.Series(self._outside if self._outside is not None else [], dtype=self.dtype)

    def schema_column(self) -> dict:
        column = {"kind": self.kind, "distinct": self.distinct}
        if self.present:
            column.update(min=float(self.low), max=float(self.high))
        return column


def _keep_extremes(kept: np.ndarray | None, values: np.ndarray) -> np.ndarray:
    values = np.sort(values if kept is None else np.concatenate([kept, values]), kind="stable")
    return values if len(values) <= 2 * schema_contract.MAX_EXAMPLES else np.concatenate([values[:5], values[-5:]])


class CategoricalStats(ColumnStats):
    """A categorical column (text, booleans, datetimes, other objects): kind, texts and their counts, distinct
    values, values that parse as numbers, and the samples the identifier check reads."""

    def __init__(self, dtype, spill: Spill, cap: int, present_total: int = 0, target: bool = False, domain=None):
        super().__init__(dtype, spill, cap, present_total, target)
        self._labels: set[str] = set()
        # Datetimes are formatted as text by the whole column (dates only, or with times): from the distinct values
        # at the end. Any other dtype's values turn into text one by one, batch by batch.
        self._datetimes = getattr(dtype, "kind", "") in "mM"
        self.texts = ValueCounts(spill, cap)
        self.raw: ValueCounts | None = None  # the values themselves, when they are not all strings
        self._raw_lost = False  # the raw values started after the texts passed the cap: counted by their texts
        self.parsed = 0  # present values whose text parses as a number
        self.bad_examples: list[str] = []  # the first distinct texts that do not parse
        self.first_texts: list[str] = []  # the target's first distinct texts
        self.number_low = self.number_high = None  # of whole numbers stored as objects
        self._sample: list[pd.Series] = []  # every (present // 100)-th value, for the UUID check
        self._seen_present = 0
        self._max_length = 0  # of the texts that passed the cap (below it, the counts hold every text)
        # Whether each of the texts' keys parses as a number, while they are exact (None after): a text is parsed
        # once, not in every batch that holds it.
        self._key_parses: np.ndarray | None = np.empty(0, dtype=bool)
        self.domain = set(domain) if domain is not None else None  # the reference schema's domain
        self.in_domain = 0
        self.domain_seen: set[str] = set()

    def update(self, values: pd.Series) -> None:
        self.rows += len(values)
        missing = values.isna().to_numpy()
        present = values[~missing] if missing.any() else values
        self.nulls += int(missing.sum())
        self._collect_sample(present)
        self._seen_present += len(present)
        if not len(present):
            if not isinstance(values.dtype, np.dtype) or values.dtype == object:
                self._labels.add(pd.api.types.infer_dtype(present, skipna=False))
            return
        if self.first_value is None and self.target:
            self.first_value = present.iloc[0]
        if self._datetimes:
            codes, uniques = pd.factorize(present.to_numpy())
            self._raw().add(uniques, np.bincount(codes, minlength=len(uniques)))
            return
        label = pd.api.types.infer_dtype(present, skipna=False)
        self._labels.add(label)
        objects = present.to_numpy() if values.dtype == object and label == "string" else None
        if objects is None:
            objects = present.astype(str).to_numpy(dtype=object)
        codes, uniques = pd.factorize(objects)
        counts = np.bincount(codes, minlength=len(uniques))
        raw = values.dtype == object and (self.raw is not None or label != "string") and not self._raw_lost
        if raw:
            self._raw()  # before this batch's texts count: the raw counts may start as the texts' so far
        self._add_texts(uniques, counts)
        if raw and not self._raw_lost:
            raw_codes, raw_uniques = (codes, uniques) if label == "string" else pd.factorize(present.to_numpy())
            raw_counts = counts if label == "string" else np.bincount(raw_codes, minlength=len(raw_uniques))
            self._raw().add(raw_uniques, raw_counts)
            if label == "integer":
                numbers = to_numbers(pd.Series(raw_uniques, dtype=object))
                low, high = numbers.min(), numbers.max()
                self.number_low = low if self.number_low is None or low < self.number_low else self.number_low
                self.number_high = high if self.number_high is None or high > self.number_high else self.number_high

    def update_arrow(self, values: pa.Array | pa.ChunkedArray) -> None:
        """``update`` for a batch of an Arrow string column, plain or dictionary-encoded (pandas would give it as an
        object column of Python strings): counted by Arrow, only its distinct values made Python strings."""
        chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
        if len(chunks) > 1 and self._joinable(chunks):
            chunks = [values.combine_chunks()]  # one count, merge and parse for the batch instead of one per chunk
        for chunk in chunks:
            self._update_arrow(chunk)

    def _joinable(self, chunks: list[pa.Array]) -> bool:
        """Whether counting ``chunks`` together gives what counting them one by one gives: dictionary-encoded, and
        too few values in their dictionaries to pass the cap, so no pruning of the counts can fall between them."""
        if not self.texts.exact or not all(isinstance(chunk, pa.DictionaryArray) for chunk in chunks):
            return False
        known = 0 if self.texts.keys is None else len(self.texts.keys)
        return known + sum(len(chunk.dictionary) for chunk in chunks) <= self._cap

    def _update_arrow(self, values: pa.Array) -> None:
        self.rows += len(values)
        self.nulls += values.null_count
        present = values.drop_null() if values.null_count else values
        step = uuid_sample_step(self._present_total)
        start = (-self._seen_present) % step
        if start < len(present):
            self._sample.append(_decoded(present.take(pa.array(np.arange(start, len(present), step)))))
        self._seen_present += len(present)
        if not len(present):
            self._labels.add("empty")
            return
        self._labels.add("string")
        if self.first_value is None and self.target:
            self.first_value = present[0].as_py()
        self._add_texts(*text_value_counts(present))

    def _raw(self) -> ValueCounts:
        if self.raw is None:
            # Until now every value was a string, its own text: the raw counts start as the texts' counts.
            self.raw = ValueCounts(self._spill, self._cap)
            self._raw_lost = not self.texts.exact
            if self.texts.keys is not None:
                self.raw.keys, self.raw.counts = self.texts.keys, self.texts.counts.copy()
        return self.raw

    def _add_texts(self, uniques: np.ndarray, counts: np.ndarray) -> None:
        was_exact = self.texts.exact
        self.texts.add(uniques, counts)
        if not self.texts.exact:
            lengths = pd.Series(self.texts.keys if was_exact else uniques, dtype=object).str.len()
            self._max_length = max(self._max_length, int(lengths.max()))
        if not pd.api.types.is_bool_dtype(self.dtype):  # cleaning.is_mostly_numbers: never for booleans
            parses = self._parses(uniques)
            self.parsed += int(counts[parses].sum())
            if len(self.bad_examples) < _EXAMPLES and not parses.all():
                self.bad_examples = _first_distinct(self.bad_examples, uniques[~parses])
        if self.target and len(self.first_texts) < _EXAMPLES:
            self.first_texts = _first_distinct(self.first_texts, uniques)
        if self.domain is not None:
            inside = pd.Index(uniques).isin(list(self.domain))
            self.in_domain += int(counts[inside].sum())
            self.domain_seen.update(uniques[inside].tolist())

    def _parses(self, uniques: np.ndarray) -> np.ndarray:
        """Which of ``uniques``, counted in the texts already, parse as numbers once stripped."""
        if self._key_parses is None or not self.texts.exact:
            self._key_parses = None
            return _parses_as_numbers(uniques)
        keys = self.texts.keys  # in order of first appearance: the new ones at the end
        if len(keys) > len(self._key_parses):
            added = _parses_as_numbers(keys[len(self._key_parses) :].to_numpy())
            self._key_parses = np.concatenate([self._key_parses, added])
        return self._key_parses[keys.get_indexer(uniques)]

    def _collect_sample(self, present: pd.Series) -> None:
        step = uuid_sample_step(self._present_total)
        start = (-self._seen_present) % step
        if start < len(present):
            self._sample.append(_detached(present.iloc[start::step]))

    @property
    def uuid_sample(self) -> pd.Series:
        """The values ``identifiers._uuid_like`` looks at of the whole column."""
        parts = [part if isinstance(part, pd.Series) else part.to_pandas() for part in self._sample]
        return pd.concat(parts, ignore_index=True) if parts else pd.Series([], dtype=object)

    def finish(self) -> None:
        if self._datetimes and self.raw is not None:
            keys, counts = self.raw.keys, self.raw.counts
            # Formatted together, so dates only or with times as the whole column is.
            texts = pd.Series(keys, dtype=self.dtype).astype(str).to_numpy(dtype=object)
            codes, uniques = pd.factorize(texts)
            self.texts.add(uniques, np.bincount(codes, weights=counts, minlength=len(uniques)).astype(np.int64))
            if not self.raw.exact:
                self._max_length = max(self._max_length, int(pd.Series(uniques, dtype=object).str.len().max()))
            if self.target:
                self.first_texts = _first_distinct([], uniques)
        self.kind = self._kind_of()
        self.text_distinct = self.texts.distinct()
        if self.kind == "string" or self.raw is None or self._raw_lost:
            self.distinct = self.text_distinct
        else:
            self.distinct = self.raw.distinct()

    def _kind_of(self) -> str:
        if pd.api.types.is_bool_dtype(self.dtype):
            return "boolean"
        if pd.api.types.is_datetime64_any_dtype(self.dtype):
            return "datetime"
        if not self._labels:  # no rows at all
            return schema_contract.kind_of(pd.Series([], dtype=self.dtype))
        return _kind(_merge_labels(self._labels))

    def mostly_numbers(self) -> bool:
        """``cleaning.is_mostly_numbers`` of the present values."""
        if not self.present or pd.api.types.is_bool_dtype(self.dtype):
            return False
        return 0.5 <= self.parsed / self.present < 1.0

    def schema_column(self) -> dict:
        keys, _ = self.texts.ordered()
        texts = keys.tolist()
        categories = texts[: schema_contract.MAX_DOMAIN]
        if self.texts.exact:
            domain = sorted(texts) if 0 < len(texts) <= schema_contract.MAX_DOMAIN else None
            max_length = int(keys.str.len().max()) if len(texts) else 0
        else:
            domain, max_length = None, self._max_length
        return {
            "kind": self.kind,
            "distinct": self.distinct,
            "categories": categories,
            "domain": domain,
            "max_length": max_length,
        }

    def outside_domain(self, domain: Sequence[str]) -> tuple[int, int, tuple]:
        """Values outside ``domain``: their count, their distinct count, and the most frequent few."""
        keys, counts = self.texts.ordered()
        unseen = ~keys.isin(list(domain))
        examples = tuple(keys[unseen][: schema_contract.MAX_EXAMPLES].tolist())
        if self.texts.exact:
            return int(counts[unseen].sum()), int(unseen.sum()), examples
        return self.present - self.in_domain, self.text_distinct - len(self.domain_seen), examples


def _parses_as_numbers(texts: np.ndarray) -> np.ndarray:
    return to_numbers(pd.Series(texts, dtype=object).str.strip()).notna().to_numpy()


def _decoded(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Dictionary-encoded text (as Parquet stores it, and the file source reads it) as plain text."""
    return values.cast(values.type.value_type) if pa.types.is_dictionary(values.type) else values


def _detached(values: pd.Series) -> pa.Array | pd.Series:
    """A few of a batch's strings, kept in Arrow memory. Kept as Python objects, each would pin the allocator
    arena it was read into (with the rest of its batch's strings): memory growing with the batches."""
    try:
        return pa.array(values.to_numpy(dtype=object), type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # not all strings: such objects come from frames, not files
        return values.copy()


def _detached_rows(rows: pd.DataFrame) -> pa.Table | pd.DataFrame:
    """``_detached`` for whole rows (the leakage check's sample)."""
    if not all(isinstance(name, str) for name in rows.columns):  # Arrow would rename them
        return rows.copy()
    if rows.columns.is_unique and all(isinstance(dtype, np.dtype) and dtype.kind in "biuf" for dtype in rows.dtypes):
        # Numbers and booleans: their arrays as they are, several times faster than ``from_pandas`` (which would
        # mark NaN missing: the same frame once attached).
        return pa.table({name: rows[name].to_numpy() for name in rows.columns})
    try:
        return pa.Table.from_pandas(rows, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return rows.copy()


def _attached_rows(rows: pa.Table | pd.DataFrame, dtypes: Mapping) -> pd.DataFrame:
    if isinstance(rows, pd.DataFrame):
        return rows
    frame = rows.to_pandas()
    for name, dtype in dtypes.items():  # Arrow gives a part without missing values its own dtype (bool, int64)
        if frame[name].dtype != dtype:
            frame[name] = frame[name].astype(dtype)
    return frame


def _first_distinct(kept: list, values: np.ndarray) -> list:
    """``kept`` extended by the first ``values`` not in it, up to ``_EXAMPLES``."""
    kept = list(kept)
    for value in values[: _EXAMPLES * 2].tolist():  # uniques: a few suffice to find the missing ones
        if len(kept) >= _EXAMPLES:
            break
        if value not in kept:
            kept.append(value)
    return kept


def column_stats(
    dtype, spill: Spill, cap: int | None = None, present_total: int = 0, target: bool = False, reference=None
) -> NumericStats | CategoricalStats:
    """The statistics of a column of ``dtype``; ``cap``: distinct values kept in memory (None: ``DISTINCT_CAP``);
    ``reference``: the reference schema's entry for it, whose range or domain the values are held to."""
    cap = DISTINCT_CAP if cap is None else cap
    reference = reference or {}
    if is_numeric_dtype(dtype):
        bounds = None
        if reference.get("type") == NUMERIC and "min" in reference:
            bounds = (reference["min"], reference["max"])
        return NumericStats(dtype, spill, cap, present_total, target, bounds)
    domain = reference.get("domain") if reference.get("type") == CATEGORICAL else None
    return CategoricalStats(dtype, spill, cap, present_total, target, domain)


def series_stats(values: pd.Series, target: bool = False) -> NumericStats | CategoricalStats:
    """The statistics of one in-memory column, finished."""
    with Spill(len(values)) as spill:
        stats = column_stats(values.dtype, spill, present_total=int(values.notna().sum()), target=target)
        stats.update(values)
        stats.finish()
    return stats


def schema_column(name, stats: NumericStats | CategoricalStats, target) -> dict:
    """The schema entry ``schema.infer`` gives the column ``name`` (see ``model_bundle.schema``)."""
    column = {
        "name": str(name),
        "type": NUMERIC if stats.numeric else CATEGORICAL,
        "dtype": str(stats.dtype),
        "nullable": stats.nulls > 0,
        "nulls": stats.nulls,
        "null_fraction": stats.nulls / stats.rows if stats.rows else 0.0,
        **stats.schema_column(),
    }
    column["unique"] = (
        name != target
        and column["kind"] in ("integer", "string")
        and stats.present > 1
        and column["distinct"] == stats.present
    )
    column["role"] = schema_contract.TARGET if name == target else schema_contract.FEATURE
    return column


def dataset_schema(
    stats: Mapping[object, NumericStats | CategoricalStats], rows: int, target, excluded: Mapping[str, str]
) -> dict:
    """The schema ``schema.infer(frame, target, excluded)`` gives the data the finished ``stats`` describe."""
    columns = [schema_column(name, column, target) for name, column in stats.items()]
    schema = {"format_version": schema_contract.SCHEMA_FORMAT, "rows": rows, "target": target, "columns": columns}
    return schema_contract.with_excluded(schema, excluded or {})


class StatsMeasure:
    """``schema.compare``'s measurements taken from finished statistics (see ``schema.compare_measured``)."""

    def __init__(self, stats: Mapping[object, NumericStats | CategoricalStats]):
        self._stats = {str(name): column for name, column in stats.items()}

    def present(self, name: str) -> int:
        return self._stats[name].present

    def outside_range(self, name: str, low: float, high: float) -> tuple[int, pd.Series]:
        column = self._stats[name]
        if column.bounds != (low, high):
            raise ValueError(f"column {name!r}: values were not held to the range [{low}, {high}]")
        return column.outside, column.outside_examples()

    def outside_domain(self, name: str, domain: Sequence[str], kind: str) -> tuple[int, int, tuple]:
        return self._stats[name].outside_domain(domain)

    def repeated(self, name: str) -> int:
        column = self._stats[name]
        return column.present - column.distinct


def gather(
    batches: Iterable[pd.DataFrame | tuple[pd.DataFrame, Mapping[str, pa.Array]]],
    dtypes: Mapping,
    nulls: Mapping,
    rows: int,
    target,
    spill: Spill,
    reference: Mapping | None = None,
    cap: int | None = None,
    sample: np.ndarray | None = None,
) -> tuple[dict, pd.DataFrame | None]:
    """Every column's finished statistics over ``batches`` (of columns ``dtypes``), and the rows of ``sample``.

    A batch is a frame, or a frame and Arrow string columns (``arrow_string_columns``) holding the other columns.
    ``nulls``: missing values per column in the whole data; ``reference``: a reference schema whose ranges and
    domains the values are held to; ``sample``: ascending ranks among the rows whose ``target`` is present (all of
    them when None) of the rows to return, in order, with every column.
    """
    expected = schema_contract.column_map(reference) if reference else {}
    stats = {
        name: column_stats(dtype, spill, cap, rows - int(nulls[name]), name == target, expected.get(str(name)))
        for name, dtype in dtypes.items()
    }
    picked = []
    labelled = 0
    for batch in batches:
        frame, texts = batch if isinstance(batch, tuple) else (batch, {})
        for name, column in stats.items():
            if name in texts:
                column.update_arrow(texts[name])
            else:
                column.update(frame[name])
        if target in stats:
            present = np.asarray(pc.is_valid(texts[target])) if target in texts else None
            present = frame[target].notna().to_numpy() if present is None else present
            labelled_rows = np.flatnonzero(present)
            if sample is None:
                wanted = present
            else:
                # The batch's labelled rows have the ranks labelled, labelled + 1, ...: the sample's ranks among
                # them (ascending) are positions in ``labelled_rows``.
                first, end = np.searchsorted(sample, [labelled, labelled + len(labelled_rows)])
                wanted = np.zeros(len(present), dtype=bool)
                wanted[labelled_rows[sample[first:end] - labelled]] = True
            if wanted.any():
                picked.append(_picked_rows(frame, texts, wanted, list(dtypes)))
            labelled += len(labelled_rows)
    for column in stats.values():
        column.finish()
    if not picked:
        return stats, None
    return stats, pd.concat([_attached_rows(rows, dtypes) for rows in picked], ignore_index=True)


def _picked_rows(frame: pd.DataFrame, texts: Mapping[str, pa.ChunkedArray], wanted: np.ndarray, names: list):
    """The ``wanted`` rows of a batch (a frame and Arrow text columns), detached from it."""
    if not texts:
        return _detached_rows(frame[wanted])
    mask = pa.array(wanted)
    picked = {name: _decoded(values.filter(mask)) for name, values in texts.items()}
    if frame.columns.empty:
        return pa.table(picked).select(names)
    rows = _detached_rows(frame[wanted])
    if isinstance(rows, pd.DataFrame):  # Arrow could not hold the frame's columns: all as pandas
        return rows.assign(**{name: values.to_pandas().to_numpy() for name, values in picked.items()})[names]
    for name, values in picked.items():
        rows = rows.append_column(name, values)
    return rows.select(names)


def arrow_string_columns(path, dtypes: Mapping) -> list[str]:
    """The columns of the Parquet dataset at ``path`` that pandas reads as objects holding Arrow strings: counted
    in Arrow (``CategoricalStats.update_arrow``), never turned into Python strings row by row."""
    schema = pq.read_schema(path)
    return [
        field.name
        for field in schema
        if (pa.types.is_string(field.type) or pa.types.is_large_string(field.type))
        and dtypes.get(field.name) == np.dtype(object)
    ]
