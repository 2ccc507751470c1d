"""How datasets travel between steps: as Parquet files, read and written the same way everywhere, with the content
hash every step records as lineage."""

from __future__ import annotations

import contextlib
import hashlib
import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

# Parquet tries dictionary encoding on every column of each row group until the dictionary reaches this size, then
# falls back to plain. With row groups of one block (~150k rows) pyarrow's default (1 MB) dictionary-encodes most
# of a high-cardinality column's row group first: measured on bench/data.py's 2M rows in 16 MB batches, writing took
# 2.27 s CPU at 1 MB (87 MB file) and 1.23 s at 128 kB (78 MB; one 1M-row group per 1M rows: 0.91 s, 77 MB).
# Columns with a few thousand distinct values (categories) still fit in the dictionary.
DICTIONARY_PAGE_BYTES = 128 * 1024


def content_hash(table: pa.Table) -> str:
    """sha256 of the data itself (column names, types and values, missing ones included), independent of the file
    format it came from, of row order within Arrow chunks and of how Arrow laid the values out in memory."""
    hasher = _ContentHasher(table.schema)
    for batch in table.to_batches():
        hasher.update(batch)
    return hasher.hexdigest()


class _ContentHasher:
    """``content_hash`` fed batch by batch: per column one stream per part (validity, lengths of text, values), each
    the same however the column is chunked, so any batching of the same rows gives the same hash."""

    def __init__(self, schema: pa.Schema):
        self.schema = schema
        self.parts = [[hashlib.sha256() for _ in range(3)] for _ in schema]

    def update(self, batch: pa.RecordBatch) -> None:
        for column, parts in zip(batch.columns, self.parts, strict=True):
            _hash_chunk(column, *parts)

    def hexdigest(self) -> str:
        digest = hashlib.sha256()
        digest.update(repr([(field.name, str(field.type)) for field in self.schema]).encode())
        for parts in self.parts:
            for part in parts:
                digest.update(part.digest())
        return digest.hexdigest()


def _hash_chunk(chunk: pa.Array, validity, lengths, values) -> None:
    # Each part is fed the bytes it always was (validity as one byte per value, text lengths as int64, fixed-width
    # values with missing ones as zero), taken from Arrow's buffers without copies where the layout allows.
    if pa.types.is_dictionary(chunk.type):
        chunk = chunk.dictionary_decode()
    kind = chunk.type
    if pa.types.is_null(kind):
        validity.update(bytes(len(chunk)))
        return
    text = any(is_kind(kind) for is_kind in _TEXT_LAYOUT)
    if not (text or pa.types.is_primitive(kind) or pa.types.is_interval(kind)):
        # Nested values (lists, structs): rare enough for their Python form, one value at a time (a value's repr
        # holds no raw line break), so that how the column is chunked does not matter.
        validity.update(chunk.is_valid().to_numpy(zero_copy_only=False).tobytes())
        for value in chunk.to_pylist():
            values.update(repr(value).encode() + b"\n")
        return
    if not len(chunk):
        return
    valid = unpack_bits(chunk.buffers()[0], chunk.offset, len(chunk)) if chunk.null_count else None
    if valid is None:
        _update_repeated(validity, _ONES, len(chunk))
    else:
        validity.update(valid)
    if text:
        _hash_text(chunk, valid, lengths, values)
    elif pa.types.is_boolean(kind):  # bit-packed in Arrow, one byte per value (as numpy's bool) in the hash
        data = unpack_bits(chunk.buffers()[1], chunk.offset, len(chunk))
        values.update(data if valid is None else data & valid)
    elif pa.types.is_date32(kind):  # days, int32 in Arrow: hashed as numpy's datetime64[D] (int64), as always
        filled = chunk if valid is None else pc.fill_null(chunk, pa.scalar(0, kind))
        values.update(np.ascontiguousarray(filled.to_numpy(zero_copy_only=False)).tobytes())
    else:  # every other fixed width (numbers, timestamps, durations, times, intervals): the buffer, missing zeroed
        data = buffer_values(chunk, f"V{kind.bit_width // 8}")
        if valid is not None:
            data = np.where(valid, data, np.zeros(1, data.dtype))
        values.update(np.ascontiguousarray(data).view(np.uint8))


# Offsets and bytes: text, and binary values hashed as text is.
_TEXT_LAYOUT = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_large_binary)


def _hash_text(chunk: pa.Array, valid: np.ndarray | None, lengths, values) -> None:
    """Lengths (int64) and bytes of a string or binary column's values, a missing value counting as empty."""
    offset_type = "<i8" if pa.types.is_large_string(chunk.type) or pa.types.is_large_binary(chunk.type) else "<i4"
    width = np.dtype(offset_type).itemsize
    offsets = np.frombuffer(chunk.buffers()[1], dtype=offset_type, count=len(chunk) + 1, offset=chunk.offset * width)
    sizes = np.subtract(offsets[1:], offsets[:-1], dtype="<i8")
    if valid is not None and sizes[~valid].any():  # a missing value with bytes behind it: leave them out
        _hash_text(pc.fill_null(chunk, ""), None, lengths, values)
        return
    lengths.update(sizes)
    if chunk.buffers()[2] is not None:
        values.update(memoryview(chunk.buffers()[2])[offsets[0] : offsets[-1]])


def unpack_bits(bitmap: pa.Buffer, offset: int, count: int) -> np.ndarray:
    """Arrow's bitmap (validity or booleans) from bit ``offset`` on, one bool per value."""
    bits = np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), count=offset + count, bitorder="little")
    return bits[offset:].view(np.bool_)


def buffer_values(array: pa.Array, dtype: str | np.dtype) -> np.ndarray:
    """The values of the fixed-width ``array`` as numpy ``dtype`` of the same width: a view of Arrow's buffer, from
    the array's offset on (a missing value's slot holds whatever the buffer holds there)."""
    dtype = np.dtype(dtype)
    return np.frombuffer(array.buffers()[1], dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize)


# Validity of a column without missing values: fed in pieces of this rather than one byte per row materialised.
_ONES = memoryview(b"\x01" * (1 << 20))


def _update_repeated(digest, piece: memoryview, count: int) -> None:
    """Feeds ``digest`` the first ``count`` bytes of ``piece`` repeated (as hashing them at once would)."""
    for _ in range(count // len(piece)):
        digest.update(piece)
    digest.update(piece[: count % len(piece)])


class DatasetWriter:
    """Writes a dataset batch by batch (bounded memory): each batch becomes Parquet row group(s) as it comes, and the
    content hash is updated as it goes, equal to ``content_hash`` of all the batches as one table.

    Use as a context manager: ``write`` each batch (all with the first one's schema), and ``info`` after the block
    holds what ``write_dataset`` returns. Two threads, one writing Parquet and one hashing (both release the GIL for
    most of their work), take each batch while the caller produces the next one. Each has a queue of one batch, and
    ``write`` waits while it is full, so the writer holds at most three batches: one being written or hashed, one
    queued, one being handed over (``peak_buffered_bytes`` records the most bytes held). ``discard()`` (or an
    exception in the block) removes the file.
    """

    def __init__(self, path: str | Path, schema: pa.Schema | None = None):
        self.path = Path(path)
        self.schema = schema  # taken from the first batch when not given
        self.rows = 0
        self.batches = 0
        self.info: dict | None = None
        self.peak_buffered_bytes = 0
        self._queues: list[queue.Queue] = [queue.Queue(maxsize=1), queue.Queue(maxsize=1)]
        self._held: dict[int, list[int]] = {}  # batch number -> [bytes, threads not done with it]
        self._lock = threading.Lock()
        self._failure: BaseException | None = None
        self._threads: list[threading.Thread] = []
        self._parquet: pq.ParquetWriter | None = None
        self._hasher: _ContentHasher | None = None

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.discard()

    def write(self, data: pa.RecordBatch | pa.Table) -> None:
        if self.schema is None:
            self.schema = data.schema
        if not self._threads:
            self._start()
        if not data.schema.equals(self.schema, check_metadata=False):
            raise ValueError(f"batch schema {data.schema} differs from the dataset's {self.schema}")
        if data.num_rows == 0:
            return
        number = self.batches
        with self._lock:
            self._held[number] = [data.nbytes, len(self._queues)]
            self.peak_buffered_bytes = max(self.peak_buffered_bytes, sum(size for size, _ in self._held.values()))
        for work in self._queues:
            self._put(work, (number, data))
        self.rows += data.num_rows
        self.batches += 1

    def close(self) -> dict:
        """Finishes the file; returns rows, columns and content_sha256 (also kept as ``info``)."""
        if self.info is not None:
            return self.info
        if self.schema is None:
            raise ValueError(f"no schema for {self.path}: write at least one batch or pass the schema")
        if not self._threads:
            self._start()
        try:
            for work in self._queues:
                self._put(work, None)
            for thread in self._threads:
                thread.join()
            self._raise_failure()
            self._parquet.close()
        except BaseException:
            self.discard()  # no partial file
            raise
        self.info = {"rows": self.rows, "columns": len(self.schema), "content_sha256": self._hasher.hexdigest()}
        return self.info

    def discard(self) -> None:
        """Stops writing and removes what was written (a restart with another schema, or a failure)."""
        self._failure = self._failure or _Discarded()
        for work, thread in zip(self._queues, self._threads, strict=False):
            while thread.is_alive():  # empty the queue so the thread sees the end marker
                try:
                    work.put(None, timeout=0.1)
                except queue.Full:
                    with contextlib.suppress(queue.Empty):
                        work.get_nowait()
            thread.join()
        if self._parquet is not None:
            with contextlib.suppress(Exception):
                self._parquet.close()
        self.path.unlink(missing_ok=True)
        self.info = None

    def _start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._parquet = pq.ParquetWriter(self.path, self.schema, dictionary_pagesize_limit=DICTIONARY_PAGE_BYTES)
        self._hasher = _ContentHasher(self.schema)
        for work, task, what in zip(self._queues, (self._write_parquet, self._hash), ("write", "hash"), strict=True):
            thread = threading.Thread(target=self._run, args=(work, task), name=f"{what} {self.path.name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _write_parquet(self, data: pa.RecordBatch | pa.Table) -> None:
        if isinstance(data, pa.Table):
            self._parquet.write_table(data)
        else:
            self._parquet.write_batch(data)

    def _hash(self, data: pa.RecordBatch | pa.Table) -> None:
        for batch in data.to_batches() if isinstance(data, pa.Table) else [data]:
            self._hasher.update(batch)

    def _put(self, work: queue.Queue, item) -> None:
        while True:  # waits for room, but not forever if a worker thread failed
            self._raise_failure()
            try:
                work.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _raise_failure(self) -> None:
        if self._failure is not None and not isinstance(self._failure, _Discarded):
            raise self._failure

    def _run(self, work: queue.Queue, task) -> None:
        try:
            while (item := work.get()) is not None and self._failure is None:
                number, data = item
                task(data)
                del item, data
                with self._lock:
                    self._held[number][1] -= 1
                    if not self._held[number][1]:
                        del self._held[number]
        except BaseException as error:  # handed to the caller's next write or close
            self._failure = error


class _Discarded(Exception):
    """Marks a writer whose output was thrown away: its thread stops without writing more."""


def write_dataset(data: pd.DataFrame | pa.Table, path: str | Path) -> dict:
    """Writes ``data`` as Parquet at ``path``; returns the metadata every step records (rows, columns, hash)."""
    table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
    with DatasetWriter(path, table.schema) as writer:
        writer.write(table)
    del table
    if not isinstance(data, pa.Table):
        pa.default_memory_pool().release_unused()  # the Arrow copy of the frame, kept by its allocator otherwise
    return writer.info


def read_dataset(path: str | Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The Parquet dataset at ``path`` as pandas, as every step reads a dataset; only ``columns`` when given (a step
    that needs one column of a large dataset holds just that)."""
    frame = pq.read_table(path, columns=None if columns is None else list(columns)).to_pandas()
    # The Arrow table is gone, but its allocator keeps the freed pages for reuse; pandas allocates elsewhere, so
    # returning them keeps the next step's peak memory near the frame's own size.
    pa.default_memory_pool().release_unused()
    return frame


# Rows per batch of ``read_batches``: ~15 MB of bench/data.py's 15 columns as pandas; enough rows that per-batch
# overheads (pandas conversions, numpy calls) stay small, few enough that a step holds a few batches at a time.
BATCH_ROWS = 131_072


def check_batch_rows(batch_rows: int, error: type[ValueError] = ValueError) -> None:
    """Raises ``error`` (a step's own ValueError) unless ``batch_rows`` is a positive integer."""
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int | np.integer) or batch_rows < 1:
        raise error(f"parameter batch_rows must be a positive integer, got {batch_rows!r}")


@dataclass(frozen=True)
class DatasetLayout:
    """What a step needs to know of a Parquet dataset before reading its rows: read from the file's footer."""

    rows: int
    nulls: dict[str, int]  # missing values per column
    # Each column's dtype in ``read_dataset(path)`` (a categorical's without its categories, which the values give).
    dtypes: dict[str, np.dtype | pd.api.extensions.ExtensionDtype]


def dataset_layout(path: str | Path) -> DatasetLayout:
    """Rows, missing values and pandas dtypes of the dataset at ``path``, without reading its values (the null
    counts come from the row groups' statistics, which ``DatasetWriter`` always writes; a file without them has its
    columns' validity read instead)."""
    parquet = pq.ParquetFile(path)
    schema = parquet.schema_arrow
    names = schema.names
    nulls = dict.fromkeys(names, 0)
    unknown = set()
    for group in range(parquet.metadata.num_row_groups):
        row_group = parquet.metadata.row_group(group)
        for index, name in enumerate(names):
            statistics = row_group.column(index).statistics
            if statistics is None or not statistics.has_null_count:
                unknown.add(name)
            else:
                nulls[name] += statistics.null_count
    for name in unknown:
        nulls[name] = sum(batch.column(0).null_count for batch in parquet.iter_batches(columns=[name]))
    empty = schema.empty_table().to_pandas()
    dtypes = {}
    for name in names:
        dtype = empty[name].dtype
        # Whole-file conversion: numpy integers with missing values become floats, numpy booleans objects (pandas
        # extension dtypes recorded in the file's pandas metadata, e.g. Int64, hold missing values themselves).
        if nulls[name] and isinstance(dtype, np.dtype) and dtype.kind in "iu":
            dtype = np.dtype("float64")
        elif nulls[name] and isinstance(dtype, np.dtype) and dtype.kind == "b":
            dtype = np.dtype("object")
        dtypes[name] = dtype
    return DatasetLayout(rows=parquet.metadata.num_rows, nulls=nulls, dtypes=dtypes)


def read_batches(
    path: str | Path,
    columns: Sequence[str] | None = None,
    batch_rows: int = BATCH_ROWS,
    layout: DatasetLayout | None = None,
) -> Iterator[pd.DataFrame]:
    """The dataset at ``path`` as pandas frames of at most ``batch_rows`` rows, in file order: memory bounded by the
    batch size, not the file.

    Each batch has the dtypes ``read_dataset(path)`` gives the whole file (an integer column with missing values
    anywhere is float64 in every batch, a boolean one object), and its index holds the rows' positions in the file,
    so concatenating the batches gives ``read_dataset(path)`` itself. ``layout``: ``dataset_layout(path)``, when
    the caller has it already.
    """
    check_batch_rows(batch_rows)
    layout = layout or dataset_layout(path)
    parquet = pq.ParquetFile(path)
    names = list(columns) if columns is not None else parquet.schema_arrow.names
    schema = pa.schema([parquet.schema_arrow.field(name) for name in names], metadata=parquet.schema_arrow.metadata)

    def frames() -> Iterator[pd.DataFrame]:
        start = 0
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=names):
            frame = pa.Table.from_batches([batch], schema=schema).to_pandas()
            del batch  # not kept while its frame waits for the caller
            for name in names:
                # numpy dtypes only: an extension dtype (a categorical's categories, Int64) comes from the metadata
                whole = layout.dtypes[name]
                if isinstance(whole, np.dtype) and frame[name].dtype != whole:
                    frame[name] = frame[name].astype(whole)
            frame.index = pd.RangeIndex(start, start + len(frame))
            start += len(frame)
            yield frame

    # Decoded and made pandas (both mostly without the GIL) by a thread while the caller works on the last frame.
    yield from read_ahead(frames())


def read_ahead(items: Iterable, depth: int = 1) -> Iterator:
    """The items of ``items`` in order, made by a daemon thread at most ``depth`` items ahead of the caller: reading
    and decoding the next batch (Arrow and numpy release the GIL) overlaps the caller's work on this one.

    At most ``depth`` + 1 items are alive: the caller's and those made (or being made) since. An exception raised by
    ``items`` is raised here, after the items before it. Closing this generator early (``break``, an exception in
    the caller) stops the thread and closes ``items``, once the item being made is done.
    """
    if depth < 1:
        raise ValueError(f"read_ahead depth must be at least 1, got {depth!r}")
    iterator = iter(items)
    room = threading.Semaphore(depth)  # items the thread may make before the caller takes them
    made: queue.SimpleQueue = queue.SimpleQueue()  # (True, item), then (False, None) at the end or (False, error)
    stop = threading.Event()

    def produce() -> None:
        try:
            while True:
                room.acquire()
                if stop.is_set():
                    return
                try:
                    item = next(iterator)
                except StopIteration:
                    made.put((False, None))
                    return
                made.put((True, item))
                del item
        except BaseException as error:
            made.put((False, error))
        finally:
            if stop.is_set() and hasattr(iterator, "close"):
                iterator.close()  # a generator's own cleanup (files, nested readers) runs now, not at collection

    thread = threading.Thread(target=produce, name="read ahead", daemon=True)
    thread.start()
    try:
        while True:
            made_one, item = made.get()
            if not made_one:
                if item is not None:
                    raise item
                return
            room.release()
            yield item
            del item  # the caller's reference alone keeps it
    finally:
        stop.set()
        room.release()  # wakes the thread waiting for room
        thread.join()


class DictionaryRows:
    """The ``columns`` of the Parquet dataset at ``path``, those named in ``dictionary`` read dictionary-encoded
    (``read_dictionary``: text counted by index, without a Python string per row), handed out in the row counts of
    another reader's batches (``next(rows)``). A dictionary reader ends its batches where the dictionaries change (at
    row groups), so its rows are cut to the other reader's bounds."""

    def __init__(self, path: str | Path, columns: Sequence[str], dictionary: Sequence[str], batch_rows: int):
        self._path = path
        parquet = pq.ParquetFile(path, read_dictionary=list(dictionary))
        # Decoded by a thread while the caller works on the rows before (its thread stops when this is collected).
        self._batches = read_ahead(parquet.iter_batches(batch_rows, columns=list(columns)))
        self._pending: pa.Table | None = None

    def next(self, rows: int) -> pa.Table:
        """The next ``rows`` rows."""
        while self._pending is None or self._pending.num_rows < rows:
            added = next(self._batches, None)
            if added is None:
                raise ValueError(f"{self._path}: its text columns end before its other columns")
            added = pa.Table.from_batches([added])
            self._pending = added if self._pending is None else pa.concat_tables([self._pending, added])
        rows_now, self._pending = self._pending.slice(0, rows), self._pending.slice(rows)
        return rows_now
