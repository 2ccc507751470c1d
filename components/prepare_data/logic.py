"""Cleans the validated data by the cleaning policy and splits it into train and test sets; owns what each
cleaning step does and the split (the component profiles the training rows with model_bundle.profile).

The steps, in the order they apply (keys of ``components._common.cleaning.CleaningPolicy``):
1. rows without a target are dropped (always); a classification target whose values are then all whole numbers is
   written as integers (a label column with a missing value reads as floats: classes 0 and 1, not 0.0 and 1.0);
2. ``coerce_mixed_types``: in a text column that is mostly numbers (the rule of ``_common.cleaning``), values that
   are not numbers become missing and the column numeric;
3. ``outliers``: ``keep`` (default), ``clip`` or ``drop`` numbers outside the fences
   ``[Q1 - k * IQR, Q3 + k * IQR]`` of each numeric feature (``k`` = ``outlier_factor``; a feature whose IQR is 0
   is left alone);
4. ``drop_duplicates``: rows repeating another row exactly are dropped.
Each step's effect (rows or values changed, per column, with examples) is in ``Preparation.cleaning``.

One implementation serves data in memory (``prepare``) and Parquet files of any size (``prepare_file``): both
feed record batches, in file order, through the same passes, so memory holds a batch, one bit of state per row
(which rows are kept) and per-column summaries, never the whole data:

- pass 1 (only for ``coerce_mixed_types`` or outliers other than ``keep``): how many values of each text column
  parse as numbers, and each numeric feature's labelled values for the outlier fences: all of them up to
  ``FENCE_EXACT_UP_TO`` (then the fences are exactly today's ``np.nanquantile``), beyond that a seeded uniform
  sample of ``FENCE_EXACT_UP_TO`` values (the bottom-k of seeded keys of their row numbers). The quartiles of a
  uniform sample of n values are within eps = sqrt(ln(2 / alpha) / (2 n)) in rank of the true quartiles with
  probability 1 - alpha (Dvoretzky-Kiefer-Wolfowitz): 0.0036 of the rows at 99% for n = 200,000;
- pass 2: coercion, clipping and dropping applied per batch with their counts; each kept row's 128-bit hash (two
  independent 64-bit hashes) spilled to disk in partitions by hash, so the duplicates are found partition by
  partition (exact up to a 128-bit hash collision, ~n^2 / 2^129: never at any realistic size; the first
  occurrence is kept); the class sizes;
- the split thresholds (``_common.sampling.SmallestKeys``: the key of each class's last test row), from the target
  column alone;
- a routing pass that cleans each batch again and sends its kept rows to train or test.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from components._common.cleaning import (
    CLIP,
    DROP,
    KEEP,
    CleaningPolicy,
    coerce_mixed_columns,
    parses_as_number,
)
from components._common.counting import dictionary_columns
from components._common.datasets import (
    BATCH_ROWS,
    DatasetWriter,
    buffer_values,
    check_batch_rows,
    dataset_layout,
    unpack_bits,
)
from components._common.sampling import SmallestKeys, mix64, proportional_counts, row_keys
from components._common.scoring import CLASSIFICATION, check_task
from model_bundle import NUMERIC, infer_feature_types

MIN_ROWS = 10
# Labelled values of a numeric feature up to which its outlier fences are exact quantiles; beyond, the quantiles of
# a seeded uniform sample of this many values (rank error above: 0.0036 at 99%). 16 bytes a value held per column.
FENCE_EXACT_UP_TO = 200_000
_FENCE_SEED = 0x0F3C_E5A1  # seeds the fence sample's keys: independent of the split's keys for any split seed
# Row hashes held in memory before they go to disk (28 bytes each: 14 MB); smaller data never touches the disk.
SPILL_AFTER_ROWS = 500_000
_SPILL_BITS = 6  # 64 partitions by the top bits of the first hash: 20 million rows make 9 MB partitions
_HASH_KEYS = ("0123456789123456", "kfp-mlops-dedup2")  # siphash keys of text values (16 bytes each)
_RECORD = np.dtype([("h1", "<u8"), ("h2", "<u8"), ("row", "<i8"), ("code", "<i4")])


class PreparationError(ValueError):
    """The data cannot be split as asked; the message names the parameter, column or class."""


@dataclass(frozen=True)
class CleaningStep:
    """What one cleaning step did: ``rows`` dropped or ``values`` changed, in which column, with examples.

    ``policy``: the cleaning policy key that decided it (``missing_target`` for the rows without a target).
    """

    policy: str
    setting: str
    column: str = ""
    rows: int = 0
    values: int = 0
    detail: str = ""


@dataclass
class Preparation:
    """The outcome of cleaning and splitting. ``train`` and ``test`` are the frames of ``prepare`` (None from
    ``prepare_file``, which writes them); ``train_info``/``test_info``: the written files' ``write_dataset``
    metadata (None from ``prepare``)."""

    train: pd.DataFrame | None
    test: pd.DataFrame | None
    dropped_missing_target: int
    dropped_duplicates: int
    cleaning: list[CleaningStep] = field(default_factory=list)
    train_rows: int = 0
    test_rows: int = 0
    train_info: dict | None = None
    test_info: dict | None = None


# --- where the batches come from and where the rows go ------------------------------------------------------------


@dataclass
class _Source:
    """The data as batches in file order: ``batches(columns)`` yields (first row number, frame);
    ``rows_and_batches(columns, for_hashing)`` yields (first row number, the batch's rows as the source holds them,
    a frame of at least ``columns``, and ``for_hashing`` of every column not in ``from_rows``; None when no column
    is needed). ``from_rows``: the columns whose values the rows hold as the frames would (their hashes are taken
    from the rows). A source may give more columns than asked (a frame gives views, which cost nothing)."""

    rows: int
    names: list
    dtypes: dict
    batches: Callable[[list | None], Iterator[tuple[int, pd.DataFrame]]]
    rows_and_batches: Callable[..., Iterator[tuple[int, object, pd.DataFrame | None]]]
    from_rows: frozenset = frozenset()  # none from a frame source: its rows are the frame


@dataclass
class _Routed:
    """One batch's routing: its rows as the source holds them, the values of the columns cleaning changed (for
    all its rows), the positions of its kept rows in it, and which of those go to the test set."""

    rows: object  # a frame (prepare) or an Arrow record batch (prepare_file)
    cleaned: dict
    at: np.ndarray
    in_test: np.ndarray


def _frame_source(frame: pd.DataFrame, batch_rows: int) -> _Source:
    def batches(columns):
        for start in range(0, len(frame), batch_rows):
            yield start, frame.iloc[start : start + batch_rows]

    def rows_and_batches(columns, for_hashing=False):
        for start, batch in batches(columns):
            yield start, batch, batch

    return _Source(len(frame), list(frame.columns), dict(frame.dtypes.items()), batches, rows_and_batches)


def _file_source(path: str | Path, batch_rows: int) -> _Source:
    layout = dataset_layout(path)
    schema = pq.read_schema(path)
    text = {f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)}
    numbers = {f.name for f in schema if _plain_numbers(f.type, layout.dtypes[f.name])}
    # Text columns of few distinct values are read as Arrow dictionaries, as Parquet mostly stores them; not a column
    # of (mostly) distinct texts: its dictionary would grow with the rows (``dictionary_columns``).
    dictionary = dictionary_columns(path, sorted(text), batch_rows)

    def to_frame(batch: pa.RecordBatch, names: list) -> pd.DataFrame:
        """The columns ``names`` of ``batch`` as ``read_batches`` gives them: the whole file's dtypes."""
        table = pa.Table.from_batches([batch.select(names)])
        for name in names:
            if name in text and pa.types.is_dictionary(table.schema.field(name).type):  # text read as a dictionary
                values = table[name].cast(schema.field(name).type)
                table = table.set_column(table.schema.get_field_index(name), name, values)
        frame = table.replace_schema_metadata(schema.metadata).to_pandas()
        for name in names:
            dtype = layout.dtypes[name]
            # A categorical column keeps its batch's categories: the empty file's dtype has none.
            if frame[name].dtype != dtype and not isinstance(dtype, pd.CategoricalDtype):
                frame[name] = frame[name].astype(dtype)
        return frame

    def batches(columns):
        start = 0
        names = list(columns) if columns is not None else list(layout.dtypes)
        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=names):
            yield start, to_frame(batch, names)
            start += batch.num_rows

    def rows_and_batches(columns, for_hashing=False):
        # Arrow batches (hashed and routed without a trip through pandas), with the frame of the named columns as
        # read_batches gives them (and, ``for_hashing``, of the columns not hashed from Arrow). Text read as
        # dictionaries: their distinct values are hashed, not every row, and a routed row moves an index, not text.
        names = [name for name in layout.dtypes if name in columns or (for_hashing and name not in text | numbers)]
        # The batches end where the dictionaries change (at row groups): hashed as they come, one array a column.
        reading = pq.ParquetFile(path, read_dictionary=dictionary).iter_batches(batch_size=batch_rows)
        if not for_hashing:  # routed rows cut as read_batches cuts them: a written row group per batch_rows rows read
            reading = _cut(reading, batch_rows)
        start = 0
        for rows in reading:
            yield start, rows, to_frame(rows, names) if names else None
            start += rows.num_rows
            del rows  # not held while the next batch is read

    names = list(layout.dtypes)
    return _Source(layout.rows, names, dict(layout.dtypes), batches, rows_and_batches, frozenset(text | numbers))


def _cut(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """The rows of ``batches`` in batches of ``rows`` rows (the last one fewer). A dictionary reader ends its batches
    where the dictionaries change (at row groups): a batch across one is made of two, with one dictionary each
    column (the file written from it is then the one written from plain text read in batches of ``rows``)."""
    pending, held = [], 0
    for batch in batches:
        pending.append(batch)
        held += batch.num_rows
        del batch
        while held >= rows:
            table = pa.Table.from_batches(pending)
            pending, held = table.slice(rows).to_batches(), held - rows
            cut = _one_batch(table.slice(0, rows))
            del table  # the batches read are held for the rows still pending alone
            yield cut
            del cut
    if held:
        yield _one_batch(pa.Table.from_batches(pending))


def _one_batch(table: pa.Table) -> pa.RecordBatch:
    """``table`` as one record batch (copied only when it has several chunks)."""
    return table.combine_chunks().to_batches()[0] if table.column(0).num_chunks > 1 else table.to_batches()[0]


def _plain_numbers(kind: pa.DataType, dtype) -> bool:
    """Whether a column of Arrow type ``kind`` read as pandas ``dtype`` holds the numbers Arrow holds (as floats
    with NaN for the missing values, when ``dtype`` is float64): the hashes of its values are taken from Arrow."""
    if not isinstance(dtype, np.dtype):
        return False
    if pa.types.is_integer(kind):
        return dtype.kind in "iu" or dtype == np.float64
    return pa.types.is_floating(kind) and dtype.kind == "f"


# --- the cleaning plan and its application to a batch -------------------------------------------------------------


@dataclass
class _Plan:
    mixed: list  # text columns coerced to numbers
    fences: dict  # numeric feature -> (low, high)
    outliers: str  # KEEP, CLIP or DROP


@dataclass
class _CoerceCount:
    values: int = 0
    examples: list = field(default_factory=list)


@dataclass
class _OutlierCount:
    rows: int = 0
    low: float = math.inf  # the smallest and largest labelled value outside the fences
    high: float = -math.inf


def _clean(batch: pd.DataFrame, labelled: np.ndarray, plan: _Plan, counts: dict | None = None):
    """The batch coerced and clipped by ``plan``, and per row whether it is a labelled row outside a fence (the rows
    ``outliers: drop`` drops). ``counts``: (coercions, outliers) per column, what the steps changed, added to (pass
    2 only)."""
    outside_any = np.zeros(len(batch), dtype=bool)
    if plan.mixed:
        coerced = coerce_mixed_columns(batch, plan.mixed)
        if counts is not None:
            for name in plan.mixed:
                lost = (batch[name].notna() & coerced[name].isna()).to_numpy()
                count = counts[0][name]
                count.values += int(lost.sum())
                if len(count.examples) < 3 and lost.any():
                    new = batch[name][lost].astype(str).unique()[: 3 + len(count.examples)]
                    count.examples += [value for value in new if value not in count.examples]
                    del count.examples[3:]
        batch = coerced
    clipped = {}
    for name, (low, high) in plan.fences.items():
        values = batch[name].to_numpy(dtype="float64", na_value=np.nan)
        outside = (values < low) | (values > high)
        outside_labelled = outside & labelled
        if counts is not None and outside_labelled.any():
            count, found = counts[1][name], values[outside_labelled]
            count.rows += int(outside_labelled.sum())
            count.low, count.high = min(count.low, float(found.min())), max(count.high, float(found.max()))
        if plan.outliers == CLIP:
            clipped[name] = np.clip(values, low, high)
        else:
            outside_any |= outside_labelled
    if clipped:
        batch = batch.assign(**clipped)
    return batch, outside_any


# --- pass 1: what the plan needs ----------------------------------------------------------------------------------


class _FenceSample:
    """A numeric feature's labelled values, all of them up to ``limit``, else the ``limit`` with the smallest seeded
    keys: a uniform sample without replacement, the same whatever the batch size."""

    def __init__(self, limit: int):
        self.limit, self.count, self.finite = limit, 0, False
        self.keys: list[np.ndarray] = []
        self.values: list[np.ndarray] = []
        self.held = 0

    def add(self, keys: np.ndarray, values: np.ndarray) -> None:
        self.count += len(values)
        self.finite = self.finite or bool(np.isfinite(values).any())
        self.keys.append(keys)
        self.values.append(values)
        self.held += len(values)
        if self.held > 2 * self.limit:  # trimmed now and then: each trim costs a partition of 2 * limit keys
            self._trim()

    def _trim(self) -> None:
        keys, values = np.concatenate(self.keys), np.concatenate(self.values)
        if len(keys) > self.limit:
            smallest = np.argpartition(keys, self.limit - 1)[: self.limit]
            keys, values = keys[smallest], values[smallest]
        self.keys, self.values, self.held = [keys], [values], len(keys)

    def quartiles(self) -> tuple[float, float]:
        if not self.finite:
            return np.nan, np.nan
        self._trim()
        q1, q3 = np.nanquantile(self.values[0], [0.25, 0.75])
        return q1, q3


def _plan(source: _Source, target: str, policy: CleaningPolicy) -> _Plan:
    """Pass 1: which text columns are mostly numbers, and the outlier fences (over the labelled rows)."""
    candidates = []
    if policy.coerce_mixed_types:
        candidates = [
            name for name in source.names if name != target and pd.api.types.is_object_dtype(source.dtypes[name])
        ]
    numeric = []
    if policy.outliers != KEEP:
        empty = pd.DataFrame({name: pd.Series([], dtype=source.dtypes[name]) for name in source.names})
        numeric = [f["name"] for f in infer_feature_types(empty, exclude=[target]) if f["type"] == NUMERIC]
    if not candidates and not numeric:
        return _Plan([], {}, policy.outliers)
    parsed = dict.fromkeys(candidates, 0)
    present = dict.fromkeys(candidates, 0)
    samples = {name: _FenceSample(FENCE_EXACT_UP_TO) for name in numeric}
    for start, batch in source.batches([target, *[name for name in source.names if name in parsed or name in samples]]):
        for name in candidates:
            values = batch[name].dropna()
            present[name] += len(values)
            if len(values):
                parsed[name] += int(parses_as_number(values).sum())
        _add_to_samples(samples, start, batch, target, coerce=False)
    # is_mostly_numbers, over the whole column: at least half, but not all, of the present values are numbers.
    mixed = [name for name in candidates if present[name] and 0.5 <= parsed[name] / present[name] < 1.0]
    if mixed and policy.outliers != KEEP:  # their values as numbers: known only now, another pass over them alone
        coerced = {name: _FenceSample(FENCE_EXACT_UP_TO) for name in mixed}
        for start, batch in source.batches([target, *mixed]):
            _add_to_samples(coerced, start, batch, target, coerce=True)
        samples |= coerced
    fences = {}
    for name in source.names:
        if name in samples:
            q1, q3 = samples[name].quartiles()
            spread = q3 - q1
            if spread > 0:
                fences[name] = (q1 - policy.outlier_factor * spread, q3 + policy.outlier_factor * spread)
    return _Plan(mixed, fences, policy.outliers)


def _add_to_samples(samples: dict, start: int, batch: pd.DataFrame, target: str, coerce: bool) -> None:
    """Adds each sampled column's labelled values of one batch (``coerce``: as numbers, as coercion makes them)."""
    if not samples:
        return
    labelled = batch[target].notna().to_numpy()
    keys = row_keys(np.arange(start, start + len(batch)), _FENCE_SEED)  # one key per row, shared by the columns
    converted = coerce_mixed_columns(batch, list(samples)) if coerce else batch
    for name, sample in samples.items():
        values = converted[name].to_numpy(dtype="float64", na_value=np.nan)
        chosen = labelled & ~np.isnan(values)
        if chosen.any():
            sample.add(keys[chosen], values[chosen])


# --- pass 2: counts, row hashes, class sizes -----------------------------------------------------------------------


def _value_hashes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Two 64-bit hashes per value, equal for values ``DataFrame.duplicated`` finds equal, whatever the batch:
    numbers are made canonical (-0.0 is 0.0, one NaN) and hashed by a bijection (both hashes are the value
    itself, so they cannot collide); text and other objects are hashed by distinct value with two siphash keys.
    ``_text_hashes`` gives the same of an Arrow text column. The arrays returned are new: the caller may change them
    in place."""
    dtype = values.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iuf":
        hashed = _number_hashes(values.to_numpy())
        return hashed, hashed
    if isinstance(dtype, np.dtype) and dtype.kind == "c":
        array = values.to_numpy()
        hashed = pd.util.hash_array(np.where(pd.isna(array), np.nan, array + 0))
        return hashed, hashed
    if isinstance(dtype, np.dtype) and dtype.kind in "bmM":
        hashed = pd.util.hash_array(values.to_numpy())
        return hashed, hashed
    if pd.api.types.is_object_dtype(dtype):
        return _distinct_hashes(*pd.factorize(values.to_numpy()))  # as DataFrame.duplicated compares them
    # pandas extension arrays (nullable numbers, categoricals, strings, dates with a time zone): hashed by value.
    return tuple(pd.util.hash_pandas_object(values, index=False, hash_key=key).to_numpy() for key in _HASH_KEYS)


def _number_hashes(values: np.ndarray) -> np.ndarray:
    """``pd.util.hash_array`` of integers or floats (splitmix64's finaliser of their bits, widened to 64), floats
    made canonical first (-0.0 as 0.0, every NaN as numpy's): computed on one new array, in place."""
    if values.dtype.kind == "f":
        values = values + 0  # -0.0 + 0 is 0.0; a new array, the one hashed
        missing = np.isnan(values)
        if missing.any():
            values[missing] = np.nan
        bits = values.view(f"u{values.dtype.itemsize}")
        return mix64(bits if bits.dtype == np.uint64 else bits.astype(np.uint64))
    return mix64(values.view(f"u{values.dtype.itemsize}").astype(np.uint64))


def _text_hashes(values: pa.Array, last: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``_value_hashes`` of an Arrow text column, plain or dictionary: its distinct values hashed, without a Python
    string per row (a dictionary may repeat a value, which then hashes equally). ``last``: the hashes of the last
    dictionary hashed, kept by the caller for the column's next batch (a dictionary reader gives every batch of a
    row group the same dictionary)."""
    given = pa.types.is_dictionary(values.type)
    encoded = values if given else pc.dictionary_encode(values)
    dictionary, indices = encoded.dictionary, encoded.indices
    if last is not None and given and last.get("dictionary") is not None and last["dictionary"].equals(dictionary):
        tables = last["tables"]
    else:
        tables = _distinct_tables(dictionary.to_numpy(zero_copy_only=False), text=not dictionary.null_count)
        if last is not None and given:
            last.update(dictionary=dictionary, tables=tables)
    # The codes from Arrow's buffers (a null's slot holds any code: set below), as intp: numpy's take is several
    # times slower with int32 codes. Cheaper than pc.fill_null, or to_numpy's floats with NaN for nulls.
    codes = buffer_values(indices, indices.type.to_pandas_dtype()).astype(np.intp)
    if indices.null_count:
        codes[~unpack_bits(indices.buffers()[0], indices.offset, len(indices))] = len(dictionary)  # missing's hashes
    return np.take(tables[0], codes, mode="clip"), np.take(tables[1], codes, mode="clip")


def _distinct_hashes(codes: np.ndarray, uniques: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the two hashes of its value ``uniques[codes]`` (code -1: missing), hashing each distinct value once."""
    first, second = _distinct_tables(uniques)
    return first[codes], second[codes]  # [-1]: missing


def _distinct_tables(uniques: np.ndarray, text: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The two hashes of each of ``uniques``, then of a missing value. ``text``: ``uniques`` are strings, none
    missing (an Arrow text dictionary)."""
    hashes = []
    for number, key in enumerate(_HASH_KEYS):
        # Text hashed value by value: pandas would factorize it first, to the same hashes.
        hashed = (
            pd.util.hash_array(uniques, hash_key=key, categorize=not text) if len(uniques) else np.empty(0, np.uint64)
        )
        if len(uniques) and not text and pd.api.types.infer_dtype(uniques, skipna=False) != "string":
            # Objects other than text: numbers (and booleans) by their float value, as Python finds 1 == 1.0 ==
            # True in any batch; others by their string and type, which keeps 1 and "1" apart. Text is hashed as in
            # a batch of text alone.
            other = np.array([not isinstance(value, str) for value in uniques], dtype=bool)
            numeric = np.array([isinstance(value, int | float | np.number) for value in uniques], dtype=bool)
            if numeric.any():
                values = uniques[numeric].astype("float64")
                hashed[numeric] = pd.util.hash_array(np.where(np.isnan(values), np.nan, values + 0))
            kinds = np.array(
                ["number" if isinstance(v, int | float | np.number) else type(v).__qualname__ for v in uniques[other]],
                dtype=object,
            )
            hashed[other] ^= mix64(pd.util.hash_array(kinds, hash_key=key))
        hashes.append(np.append(hashed, np.uint64(0x6A09E667F3BCC908 + number)))
    return hashes[0], hashes[1]


def _row_hashes(
    frame: pd.DataFrame | None, rows, names: list, from_rows: dict | None = None, last: dict | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Two independent 64-bit hashes of each row's values (columns ``names``: those in ``from_rows`` (name: its
    dtype in the frames) from the Arrow batch ``rows``, as a frame would hold them, the others from ``frame``): the
    first folds the columns' hashes as a polynomial, the second mixes each column's in with its own salt, so a
    collision of both is as unlikely as one of 128 bits. ``last``: per text column, its last dictionary's hashes
    (``_text_hashes``), kept by the caller from batch to batch."""
    from_rows = from_rows or {}
    last = {} if last is None else last
    length = len(frame) if frame is not None else rows.num_rows
    first = np.zeros(length, dtype=np.uint64)
    second = np.zeros(length, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for position, name in enumerate(names):  # one column at a time: a hash and a copy of one column in memory
            if name not in from_rows:
                one, two = _value_hashes(frame[name])
            elif pa.types.is_integer(rows.schema.field(name).type) or pa.types.is_floating(
                rows.schema.field(name).type
            ):
                numbers = rows.column(name).to_numpy(zero_copy_only=False)  # missing as NaN (floats), as in pandas
                one = two = _number_hashes(numbers.astype(from_rows[name], copy=False))
            else:
                one, two = _text_hashes(rows.column(name), last.setdefault(name, {}))
            first *= np.uint64(1_000_003)  # in place (the hashes are new arrays): first * 1_000_003 ^ one
            first ^= one
            two += np.uint64((position + 1) * 0x9E3779B97F4A7C15 % (1 << 64))
            second ^= two
            mix64(second)  # a bijection per column: a chain no column's order or value can cancel
    return first, second


def _duplicated(frame: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """``frame.iloc[rows].duplicated()`` as an array, by the rows' 128-bit hashes: the rule ``prepare`` applies."""
    part = frame.iloc[rows]
    records = np.empty(len(part), dtype=_RECORD)
    records["h1"], records["h2"] = _row_hashes(part, None, list(part.columns))
    records["row"], records["code"] = np.arange(len(part)), 0
    return _first_occurrences(records)


class _HashSpill:
    """The kept rows' hashes (with row number and class code), in memory up to ``SPILL_AFTER_ROWS`` rows, then on
    disk in partitions by hash: equal rows land in the same partition, so duplicates are found one partition at a
    time."""

    def __init__(self):
        self._held: list[np.ndarray] = []
        self._rows = 0
        self._directory: tempfile.TemporaryDirectory | None = None
        self._files: list = []

    def add(self, first: np.ndarray, second: np.ndarray, rows: np.ndarray, codes: np.ndarray) -> None:
        if self._directory is None:
            records = np.empty(len(rows), dtype=_RECORD)
            records["h1"], records["h2"], records["row"], records["code"] = first, second, rows, codes
            self._held.append(records)
            self._rows += len(records)
            if self._rows > SPILL_AFTER_ROWS:
                self._spill_held()
        else:
            self._write(first, second, rows, codes)

    def _spill_held(self) -> None:
        self._directory = tempfile.TemporaryDirectory(prefix="prepare-hashes-")
        directory = Path(self._directory.name)
        self._files = [open(directory / f"{part}.bin", "wb") for part in range(1 << _SPILL_BITS)]  # noqa: SIM115
        for records in self._held:
            self._write(records["h1"], records["h2"], records["row"], records["code"])
        self._held, self._rows = [], 0

    def _write(self, first: np.ndarray, second: np.ndarray, rows: np.ndarray, codes: np.ndarray) -> None:
        parts = (first >> np.uint64(64 - _SPILL_BITS)).astype(np.uint8)
        order = np.argsort(parts, kind="stable")  # a radix sort of small codes; keeps file order in a partition
        bounds = np.concatenate([[0], np.cumsum(np.bincount(parts, minlength=len(self._files)))])
        # Records made in partition order field by field: np.take of plain arrays is several times faster than of
        # 28-byte records (or than fancy indexing).
        records = np.empty(len(order), dtype=_RECORD)
        for name, values in (("h1", first), ("h2", second), ("row", rows), ("code", codes)):
            records[name] = np.take(values, order)
        for part, stream in enumerate(self._files):
            if bounds[part + 1] > bounds[part]:
                records[bounds[part] : bounds[part + 1]].tofile(stream)

    def partitions(self) -> Iterator[np.ndarray]:
        """The records partition by partition, each in file order."""
        if self._directory is None:
            if self._held:
                yield np.concatenate(self._held)
            return
        try:
            for stream in self._files:
                stream.close()
            for stream in self._files:
                yield np.fromfile(stream.name, dtype=_RECORD)
        finally:
            self._directory.cleanup()


def _first_occurrences(records: np.ndarray) -> np.ndarray:
    """Per record (in file order), whether it repeats an earlier record's row (equal hashes)."""
    # Rows whose first hash repeats (the duplicates, and a first-hash collision now and then; found with a hash
    # table, cheaper than a sort) are settled exactly among themselves by sorting them by both hashes.
    shared = pd.Series(records["h1"]).duplicated(keep=False).to_numpy()
    repeated = np.zeros(len(records), dtype=bool)
    candidates = np.flatnonzero(shared)  # in file order
    if len(candidates):
        subset = records[candidates]
        inner = np.lexsort((subset["h2"], subset["h1"]))  # stable: equal rows stay in file order
        one, two = subset["h1"][inner], subset["h2"][inner]
        repeated[candidates[inner[1:]]] = (one[1:] == one[:-1]) & (two[1:] == two[:-1])
    return repeated


class _Classes:
    """Class labels (as text) numbered in order of first appearance, across batches."""

    def __init__(self):
        self.codes: dict[str, int] = {}

    def encode(self, labels: pd.Series) -> np.ndarray:
        codes, uniques = pd.factorize(labels.astype(str))
        known = np.array([self.codes.setdefault(label, len(self.codes)) for label in uniques], dtype=np.int32)
        return known[codes] if len(codes) else np.empty(0, dtype=np.int32)


# --- the passes --------------------------------------------------------------------------------------------------


def _run(
    source: _Source,
    target: str,
    task: str,
    test_fraction: float,
    seed: int,
    policy: CleaningPolicy,
    route: Callable[[Iterator[_Routed], dict], None],
) -> Preparation:
    """Cleans and splits ``source``; ``route`` receives each batch's kept rows and which of them are test rows, and
    the dtypes to write the kept rows with (``source.dtypes``, but a classification target of whole numbers is
    int64: ``_written_dtypes``)."""
    check_task(task)
    if not 0.0 < test_fraction < 1.0:
        raise PreparationError(f"parameter test_fraction must be between 0 and 1 (exclusive), got {test_fraction}")
    if target not in source.names:
        raise PreparationError(f"target column {target!r} not found; columns are {source.names}")
    classify = task == CLASSIFICATION
    plan = _plan(source, target, policy)

    # Pass 2. ``kept``: one byte per row, and for classification each row's class code (one byte per row up to 256
    # classes), the only state the size of the data held in memory: the later passes need not read the target again.
    kept = np.zeros(source.rows, dtype=bool)
    row_classes = np.zeros(source.rows if classify else 0, dtype=np.uint8)
    counts = ({name: _CoerceCount() for name in plan.mixed}, {name: _OutlierCount() for name in plan.fences})
    classes = _Classes()
    spill = _HashSpill() if policy.drop_duplicates else None
    sizes = np.zeros(0, dtype=np.int64)
    labelled_rows = 0
    # A float classification target whose kept values are all whole numbers: a label column with a missing value
    # reads as floats, and its classes would be named 0.0 and 1.0 instead of 0 and 1.
    whole_labels = classify and _is_float(source.dtypes[target])
    wanted = [target, *[name for name in source.names if name in plan.mixed or name in plan.fences]]
    # Columns whose values cleaning leaves alone are hashed as the source holds them (Arrow: no pandas copy).
    altered = set(plan.mixed) | (set(plan.fences) if plan.outliers == CLIP else set())
    from_rows = {name: source.dtypes[name] for name in source.from_rows if name not in altered}
    dictionaries = {}  # per text column, its last dictionary's hashes
    batches = (
        source.rows_and_batches(wanted, for_hashing=True)
        if spill
        else ((start, None, b) for start, b in source.batches(wanted))
    )
    for start, rows, batch in batches:
        labelled = batch[target].notna().to_numpy()
        labelled_rows += int(labelled.sum())
        batch, outside = _clean(batch, labelled, plan, counts)
        keep = labelled & ~outside
        kept[start : start + len(batch)] = keep
        at = np.flatnonzero(keep)
        codes = classes.encode(batch[target].iloc[at]) if classify else np.zeros(len(at), dtype=np.int32)
        if whole_labels:
            whole_labels = _whole_numbers(batch[target].to_numpy()[at])
        if classify:
            if len(classes.codes) > np.iinfo(row_classes.dtype).max + 1:
                row_classes = row_classes.astype(np.min_scalar_type(len(classes.codes) - 1))
            row_classes[start + at] = codes
        if spill is not None:
            first, second = _row_hashes(batch, rows, source.names, from_rows, dictionaries)
            spill.add(first[at], second[at], start + at, codes)
        elif classify:
            sizes = _add_counts(sizes, codes)
        del batch
    dropped_missing_target = source.rows - labelled_rows
    cleaning = [CleaningStep("missing_target", "drop", target, rows=dropped_missing_target)]
    for name in plan.mixed:
        count = counts[0][name]
        detail = f"not numbers, set missing: {count.examples}"
        cleaning.append(CleaningStep("coerce_mixed_types", "coerce", name, values=count.values, detail=detail))
    dropped_outliers = 0
    for name, (low, high) in plan.fences.items():
        count = counts[1][name]
        if not count.rows:
            continue
        detail = f"outside [{low:.6g}, {high:.6g}], e.g. {count.low:.6g} .. {count.high:.6g}"
        if plan.outliers == CLIP:
            cleaning.append(CleaningStep("outliers", CLIP, name, values=count.rows, detail=detail))
        else:
            cleaning.append(CleaningStep("outliers", DROP, name, rows=count.rows, detail=detail))
    if plan.outliers == DROP:
        dropped_outliers = source.rows - dropped_missing_target - int(kept.sum())
        if dropped_outliers:
            # A row outside in several columns is counted in each column but dropped once.
            cleaning.append(CleaningStep("outliers", DROP, "", rows=dropped_outliers, detail="rows dropped in all"))
    # Only columns with labelled values outside their fences are clipped (a column clipped otherwise would still turn
    # from integers into floats); the pass above clipped them all, which changed no kept row's value.
    plan.fences = {name: fence for name, fence in plan.fences.items() if counts[1][name].rows}
    usable = int(kept.sum())
    if spill is not None:
        for records in spill.partitions():
            repeated = _first_occurrences(records)
            kept[records["row"][repeated]] = False
            sizes = _add_counts(sizes, records["code"][~repeated])
    n_kept = int(kept.sum())
    dropped_duplicates = usable - n_kept
    setting = DROP if policy.drop_duplicates else KEEP
    cleaning.append(CleaningStep("duplicates", setting, rows=dropped_duplicates))
    if n_kept < MIN_ROWS:
        dropped = ", ".join(f"{step.rows} by {step.policy}" for step in cleaning if step.rows)
        raise PreparationError(
            f"only {n_kept} usable rows of {source.rows} remain after cleaning ({dropped or 'none dropped'}) on "
            f"target {target!r}; at least {MIN_ROWS} are needed"
        )
    test_rows = math.ceil(n_kept * test_fraction)  # the test set's size as scikit-learn's train_test_split had it
    if classify:
        labels = np.array(list(classes.codes), dtype=object)  # in order of first appearance among the kept rows
        sizes = np.pad(sizes, (0, len(labels) - len(sizes)))
        # Classes renumbered in sorted order: the allocation's tie-break then does not depend on which class comes
        # first in the file.
        order = np.argsort(labels)
        renumber = np.argsort(order)
        sorted_sizes = sizes[order]
        if (sizes < 2).any():
            rare = labels[sizes < 2].tolist()  # in file order
            # A numeric target with few values is classified by task=auto (validate_data): say how to undo that.
            dtype = source.dtypes[target]
            numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
            hint = "; if the target is a quantity, not classes, set task='regression'" if numeric else ""
            raise PreparationError(
                f"class(es) {rare} of target {target!r} have a single row; a stratified split "
                f"needs at least 2 rows per class (drop or merge rare classes){hint}"
            )
        if test_rows < len(labels) or n_kept - test_rows < len(labels):
            raise PreparationError(
                f"test_fraction {test_fraction} of {n_kept} rows cannot hold all {len(labels)} classes of "
                f"{target!r} in both train and test; use more data or a test_fraction nearer 0.5"
            )
        # Every class gets its share of the test set, up to rounding, and at least one row on each side.
        selected = proportional_counts(sorted_sizes, test_rows, low=1, high=sorted_sizes - 1)
        search = SmallestKeys(sorted_sizes, selected)
    else:
        if test_rows >= n_kept:
            raise PreparationError(
                f"test_fraction {test_fraction} of {n_kept} rows puts every row in the test set and none in "
                "train; use a smaller test_fraction"
            )
        renumber = None
        search = SmallestKeys([n_kept], [test_rows])

    def keys_and_groups(start: int, length: int):
        at = np.flatnonzero(kept[start : start + length])
        groups = renumber[row_classes[start + at]] if classify else None
        return at, row_keys(start + at, seed), groups

    # Each class's test rows are its rows with the smallest seeded keys of their row numbers in the data as read:
    # the same rows for the same seed and data, whatever the batch size (``_common.sampling``). The keys are of row
    # numbers alone and the classes are held: no data to read.
    while not search.done:
        for start in range(0, source.rows, BATCH_ROWS):
            search.add(*keys_and_groups(start, min(BATCH_ROWS, source.rows - start))[1:])
        search.end_pass()
    thresholds = search.thresholds

    # The routing pass: only the columns cleaning changes are cleaned again.
    routing = _Plan(plan.mixed, plan.fences if plan.outliers == CLIP else {}, plan.outliers)
    changed = [name for name in source.names if name in routing.mixed or name in routing.fences]

    def parts() -> Iterator[_Routed]:
        for start, rows, batch in source.rows_and_batches(changed):
            length = len(rows) if isinstance(rows, pd.DataFrame) else rows.num_rows
            at, keys, groups = keys_and_groups(start, length)
            if len(at):
                cleaned = _clean(batch, np.zeros(length, dtype=bool), routing)[0] if changed else {}
                yield _Routed(rows, {name: cleaned[name] for name in changed}, at, thresholds.select(keys, groups))
                del cleaned
            del rows, batch  # not held while the next batch is read

    route(parts(), _written_dtypes(source.dtypes, target, whole_labels))
    return Preparation(
        train=None,
        test=None,
        dropped_missing_target=dropped_missing_target,
        dropped_duplicates=dropped_duplicates,
        cleaning=cleaning,
        train_rows=n_kept - test_rows,
        test_rows=test_rows,
    )


def _is_float(dtype) -> bool:
    return isinstance(dtype, np.dtype) and dtype.kind == "f"


def _whole_numbers(values: np.ndarray) -> bool:
    """Whether every value is a whole number that int64 holds exactly (floats hold every integer up to 2**53)."""
    return bool(np.all((np.abs(values) <= 2**53) & (values == np.round(values))))


def _written_dtypes(dtypes: dict, target: str, whole_labels: bool) -> dict:
    """The dtypes of the train and test sets: the data's, but a classification target of whole numbers as int64 (the
    labels the model card and the server name its classes by: 0 and 1, as from a label column with no missing value,
    not 0.0 and 1.0)."""
    return {**dtypes, target: np.dtype("int64")} if whole_labels else dtypes


def _add_counts(sizes: np.ndarray, codes: np.ndarray) -> np.ndarray:
    counted = np.bincount(codes, minlength=len(sizes)).astype(np.int64)
    counted[: len(sizes)] += sizes
    return counted


def prepare(
    frame: pd.DataFrame,
    target: str,
    task: str,
    test_fraction: float = 0.2,
    seed: int = 42,
    cleaning_policy: CleaningPolicy = CleaningPolicy(),  # noqa: B008 (frozen: one shared default is safe)
    batch_rows: int = BATCH_ROWS,
) -> Preparation:
    """Cleans ``frame`` by ``cleaning_policy`` (the steps of the module docstring), then splits train/test.

    Classification splits are stratified: every class is in both sets, with its share of the test rows up to
    rounding (``_common.sampling.proportional_counts``). The split is decided per row by a seeded hash of its row
    number in ``frame`` (``_common.sampling.row_keys``), so it is deterministic for a given ``seed`` and data, and
    a row's side does not depend on the other rows beyond the counts; both sets keep the rows in ``frame``'s order.
    The same passes as ``prepare_file`` over ``frame`` in batches of ``batch_rows``: the same result for any.
    """
    check_batch_rows(batch_rows, PreparationError)
    train: list[pd.DataFrame] = []
    test: list[pd.DataFrame] = []

    def collect(parts: Iterator[_Routed], dtypes: dict) -> None:
        for part in parts:
            rows = part.rows.assign(**part.cleaned) if part.cleaned else part.rows
            rows = rows.take(part.at).astype({target: dtypes[target]})
            train.append(rows[~part.in_test])
            test.append(rows[part.in_test])

    prepared = _run(_frame_source(frame, batch_rows), target, task, test_fraction, seed, cleaning_policy, collect)
    prepared.train = pd.concat(train).reset_index(drop=True)
    prepared.test = pd.concat(test).reset_index(drop=True)
    return prepared


def prepare_file(
    path: str | Path,
    train_path: str | Path,
    test_path: str | Path,
    target: str,
    task: str,
    test_fraction: float = 0.2,
    seed: int = 42,
    cleaning_policy: CleaningPolicy = CleaningPolicy(),  # noqa: B008 (frozen: one shared default is safe)
    batch_rows: int = BATCH_ROWS,
) -> Preparation:
    """``prepare`` of the Parquet dataset at ``path`` (the same rows, steps and messages as ``prepare`` of
    ``read_dataset(path)``), read in batches of ``batch_rows`` rows and written to ``train_path`` and ``test_path``
    as ``write_dataset`` writes them (``train_info``/``test_info``: their metadata): memory holds a few batches and
    one byte per row, whatever the size of the file."""
    check_batch_rows(batch_rows, PreparationError)
    source = _file_source(path, batch_rows)
    infos = {}

    def write(parts: Iterator[_Routed], dtypes: dict) -> None:
        schema = None
        with DatasetWriter(train_path) as train, DatasetWriter(test_path) as test:
            for part in parts:
                schema = schema or _output_schema(path, dtypes, part.cleaned)
                cleaned = {
                    name: values.to_numpy(dtype="float64", na_value=np.nan) for name, values in part.cleaned.items()
                }
                for writer, chosen in ((train, part.at[~part.in_test]), (test, part.at[part.in_test])):
                    # The rows chosen first, then converted: text read as dictionaries is made text for them alone.
                    mask = np.zeros(part.rows.num_rows, dtype=bool)
                    mask[chosen] = True
                    values = {name: column[mask] for name, column in cleaned.items()}
                    writer.write(_arrow_rows(part.rows.filter(pa.array(mask)), values, schema, dtypes))
                del part, cleaned, values  # not held while the next batch is read
        infos["train"], infos["test"] = train.info, test.info

    prepared = _run(source, target, task, test_fraction, seed, cleaning_policy, write)
    prepared.train_info, prepared.test_info = infos["train"], infos["test"]
    return prepared


def _output_schema(path: str | Path, written: dict, cleaned: dict) -> pa.Schema:
    """The Arrow schema ``write_dataset`` gives the whole cleaned frame (``pa.Table.from_pandas``) of the dtypes
    ``written``: pandas' own conversion of each column's dtype (cleaned columns are numbers), with object columns
    typed as in the input file (from an empty column alone pandas cannot tell their type)."""
    given = pq.read_schema(path)
    dtypes = {name: np.dtype("float64") if name in cleaned else dtype for name, dtype in written.items()}
    empty = pd.DataFrame({name: pd.Series([], dtype=dtype) for name, dtype in dtypes.items()})
    schema = pa.Schema.from_pandas(empty, preserve_index=False)
    fields = []
    for name, dtype in dtypes.items():
        found = schema.field(name)
        if pd.api.types.is_object_dtype(dtype):
            kind = given.field(name).type
            found = found.with_type(pa.string() if pa.types.is_large_string(kind) else kind)
        elif isinstance(dtype, pd.CategoricalDtype):
            found = found.with_type(given.field(name).type)  # its dictionary as in the file
        fields.append(found)
    return pa.schema(fields, metadata=schema.metadata)


def _arrow_rows(rows: pa.RecordBatch, cleaned: dict, schema: pa.Schema, dtypes: dict) -> pa.RecordBatch:
    """Rows as ``pa.Table.from_pandas`` gives them from the cleaned frame (``cleaned``: the values of the columns
    cleaning changed, float64), without pandas for the columns whose Arrow values pass unchanged (the same types,
    integers that pandas makes floats, text, text read as a dictionary)."""
    arrays = []
    for column in schema:
        name = column.name
        if name in cleaned:
            arrays.append(pa.array(cleaned[name], type=column.type, from_pandas=True))
            continue
        array = rows.column(name)
        same = array.type.equals(column.type)
        if same or (pa.types.is_integer(array.type) and pa.types.is_floating(column.type)):
            array = array if same else array.cast(column.type, safe=False)
            if same and pa.types.is_floating(column.type):  # NaN is missing in pandas, and a null again in Arrow
                nan = pc.is_nan(array)
                if pc.any(nan).as_py():
                    array = pc.if_else(nan, pa.scalar(None, column.type), array)
        elif pa.types.is_floating(array.type) and pa.types.is_integer(column.type):
            array = array.cast(column.type)  # a classification target of whole numbers (_written_dtypes)
        elif pa.types.is_large_string(array.type) and pa.types.is_string(column.type):
            array = array.cast(column.type)
        elif pa.types.is_dictionary(array.type) and pd.api.types.is_object_dtype(dtypes[name]):
            array = array.cast(column.type)  # text the source read as a dictionary: its values
        else:  # other types (dictionaries, decimals, ...) take pandas' way, as write_dataset takes it
            values = pa.Table.from_arrays([array], names=[name]).to_pandas()[name].astype(dtypes[name])
            array = pa.Array.from_pandas(values)
            if not array.type.equals(column.type):
                array = array.cast(column.type)
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
