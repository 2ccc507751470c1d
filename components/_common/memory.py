"""A clear stop instead of an OOM kill: a data step compares the memory it will need with the memory its container
may use, and stops with a message naming the step, both figures and what to change.

The rule. A step estimates its peak resident memory from the dataset's Parquet metadata (rows, columns, the
uncompressed size of each text column: nothing is read), and stops with `MemoryBudgetError` when the estimate is
above the container's memory limit less `HEADROOM` (5%). The limit is the one the kernel enforces: the cgroup memory
limit of this process (`memory_limit`), the smallest of its cgroup and of every parent cgroup. An unlimited or
unknown limit (a laptop, kfp.local, a system without cgroups) means no check.

Why 5% headroom. The estimate is already of the whole process (the interpreter and its libraries included) and
measured to lie above the true peak (3-25%); the cgroup also charges what the process's RSS does not show (page tables,
kernel buffers, dirty pages of the files a step writes before they reach the disk), a few percent of it. A step
whose estimate is within 5% of its limit would be killed at the first surprise, so it stops with the message.

The estimate (`dataset_memory`), for validate_data and prepare_data, which read the dataset in record batches of
`BATCH_ROWS` rows (`datasets.read_batches`): peak = `BASE_BYTES` + `BATCH_WORKSPACE` x one batch as a pandas frame +
`ROW_BYTES` x the rows + `TEXT_VALUE_BYTES` x the values of plain-encoded (mostly distinct) text columns (+ what a
step adds per column whatever the rows: validate_data's leakage check, `leakage.MEMORY_PER_COLUMN`). A batch as
pandas is 8 bytes per value (numbers, missing values as NaN, the pointer of each text value) plus its text values as
Python strings (a text value of n bytes is a str of 49 + n bytes, so plain-encoded text costs 45 bytes per value
more than its Parquet size; dictionary-encoded text, a few distinct values shared by every row, costs little): the
frame of the whole dataset, scaled to one batch. `ROW_BYTES` covers what a step keeps per row of the whole dataset
(prepare_data's mask of the rows cleaning keeps, a classification's class code of each row and its draw of the
reference sample; validate_data keeps nothing per row); `TEXT_VALUE_BYTES` what they keep per distinct text value
(the batches' Python strings). Each component (`python_func`) run in its own process, its peak its own VmHWM, on
`bench/data.py`'s 15 columns (11 numeric, 4 categorical) and the same with a unique 18-character text column (an
identifier):

    rows (columns)     validate_data  prepare_data  estimate
    200,000 (16)              403 MB        419 MB    460 MB
    2,000,000 (16)            476 MB        503 MB    542 MB
    5,000,000 (16)            524 MB        530 MB    679 MB
    5,000,000 (15)            400 MB        431 MB    452 MB
    20,000,000 (15)           419 MB        488 MB    566 MB

The imports alone peak at about 250 MB. Before the steps streamed they held the whole dataset as pandas (5,889 /
5,874 MB at 20,000,000 rows; the history of this file has that estimate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

MB = 2**20
GIB = 2**30
HEADROOM = 0.05  # share of the limit kept free (see the module docstring)
BASE_BYTES = 350 * MB  # the interpreter, its libraries and the steps' fixed work (see the module docstring)
BATCH_WORKSPACE = 4  # a step's peak over one batch as pandas: the batch, its conversions, masks and copies
ROW_BYTES = 8  # what a step keeps per row of the whole dataset (see the module docstring)
# What a step's peak grows by per value of a mostly-distinct text column (an identifier): 16 B/row measured for
# validate_data (allocator fragmentation from a batch's Python strings), 9 for prepare_data, from 2M to 5M rows.
TEXT_VALUE_BYTES = 40
VALUE_BYTES = 8  # a number, or a pointer to a Python object, per value in a pandas column
STR_OVERHEAD = 45  # a Python str is 49 bytes + its text; plain-encoded Parquet text is 4 bytes + its text
# Below this many bytes per value a text column chunk is dictionary-encoded: its indices take at most 20 bits (pyarrow
# falls back to plain encoding past a 1 MB dictionary) and each plain value at least 4 (its length).
PLAIN_TEXT_MIN_BYTES = 4
DICTIONARY_TEXT_FACTOR = 3  # a dictionary-encoded chunk's distinct strings as Python objects, bounded by its size
DATE_BYTES = 32  # a datetime.date object: pandas holds dates as objects
# cgroup v1 writes "no limit" as the largest page-aligned 64-bit number (9223372036854771712); no real limit is near.
V1_UNLIMITED = 2**60

# What a user changes for a data step of this project's pipelines (pipelines/_kubernetes.py: DATA_MEMORY_LIMIT).
DATA_STEP_REMEDY = (
    "raise the pipeline parameter `data_memory_limit` (the memory limit of ingest, validate and prepare; default "
    "1Gi), e.g. `data_memory_limit={gib}Gi`; in a pipeline of your own, `.set_memory_limit('{gib}Gi')` on this task"
)


class MemoryBudgetError(RuntimeError):
    """A step would need more memory than its container may use: raised before it reads its data."""

    def __init__(self, step: str, estimate: int, limit: int, message: str):
        super().__init__(message)
        self.step, self.estimate, self.limit = step, estimate, limit


@dataclass(frozen=True)
class DatasetMemory:
    """A step's estimated peak memory for a dataset, and the dataset's size the estimate is for."""

    rows: int
    columns: int
    frame_bytes: int  # the whole dataset as a pandas frame (a step holds one batch of it at a time)
    peak_bytes: int  # the step's peak: a batch, the step's work on it and per row, the interpreter and libraries

    def describe(self) -> str:
        return f"for {self.rows:,} rows x {self.columns:,} columns"


def memory_limit(root: Path = Path("/sys/fs/cgroup"), proc_cgroup: Path = Path("/proc/self/cgroup")) -> int | None:
    """The memory limit, in bytes, of this process's cgroup (the smallest of its cgroup and every parent's); None
    when it has none or it cannot be read.

    cgroup v1 (and the hybrid layout, whose memory controller is v1): `memory.limit_in_bytes` under
    `<root>/memory/<path>`, <path> from the `memory` line of /proc/self/cgroup. cgroup v2: `memory.max` under
    `<root>/<path>` (or `<root>/unified/<path>` in the hybrid layout), <path> from the `0::` line. In a container
    with its own cgroup namespace (Docker's default on v2; Kubernetes on v2) the path is "/" and <root> is the
    container's cgroup; in one without (Docker on v1) the path names a cgroup of the host that the container does
    not see, and walking up to <root>, which is the container's cgroup, finds its limit.
    """
    try:
        lines = Path(proc_cgroup).read_text().splitlines()
    except OSError:
        return None
    v1_path = v2_path = None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and not controllers:
            v2_path = path
        elif "memory" in controllers.split(","):
            v1_path = path
    root = Path(root)
    if v1_path is not None:
        return _smallest_limit(root / "memory", v1_path, "memory.limit_in_bytes")
    if v2_path is not None:
        base = root if (root / "cgroup.controllers").exists() or not (root / "unified").is_dir() else root / "unified"
        return _smallest_limit(base, v2_path, "memory.max")
    return None


def _smallest_limit(base: Path, path: str, filename: str) -> int | None:
    """The smallest limit in `filename` of the cgroup at `path` under `base` and of its parents up to `base`."""
    parts = [part for part in path.strip().split("/") if part]
    limits = []
    for depth in range(len(parts), -1, -1):
        try:
            text = (base.joinpath(*parts[:depth]) / filename).read_text().strip()
        except OSError:  # not there (a host's cgroup seen from a container, the v2 root), or not readable
            continue
        if text == "max":
            continue
        try:
            value = int(text)
        except ValueError:
            continue
        if value < V1_UNLIMITED:
            limits.append(value)
    return min(limits) if limits else None


def check_memory(
    step: str,
    estimate: int,
    remedy: str,
    *,
    limit: int | Literal["cgroup"] | None = "cgroup",
    headroom: float = HEADROOM,
    workload: str = "",
) -> None:
    """Raises MemoryBudgetError when `estimate` bytes do not fit in `limit` bytes less `headroom` (a share of it).

    `limit` defaults to this process's cgroup limit (`memory_limit()`); None (unknown or unlimited) skips the check.
    `remedy` says what to change; `{gib}` in it becomes the smallest whole number of GiB the estimate fits in.
    `workload` says what the estimate is for, e.g. "for 20,000,000 rows x 15 columns".
    """
    if limit == "cgroup":
        limit = memory_limit()
    if limit is None or estimate <= limit * (1 - headroom):
        return
    gib = math.ceil(estimate / (1 - headroom) / GIB)
    remedy = remedy.replace("{gib}", str(gib))  # not str.format: a remedy may hold other braces
    message = (
        f"{step} needs about {estimate / MB:,.0f} MB{' ' + workload if workload else ''} but its container may use "
        f"{limit / MB:,.0f} MB (cgroup memory limit, {headroom:.0%} of it kept free): {remedy}"
    )
    raise MemoryBudgetError(step, estimate, limit, message)


def dataset_memory(parquet_path: str | Path, column_bytes: int = 0) -> DatasetMemory | None:
    """The estimated peak memory of a step that reads the Parquet dataset at `parquet_path` in record batches
    (validate_data, prepare_data; see the module docstring), from the file's metadata alone; None when the metadata
    cannot be read (reading the dataset then fails with its own message). `column_bytes`: what the step's own work
    adds per column, whatever the rows (validate_data's leakage check on its fixed sample)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from components._common.datasets import BATCH_ROWS

    try:
        with pq.ParquetFile(parquet_path) as parquet:
            metadata, schema = parquet.metadata, parquet.schema_arrow
    except (OSError, pa.ArrowException):
        return None
    rows, columns = metadata.num_rows, len(schema)
    frame = rows * columns * VALUE_BYTES
    held = ROW_BYTES * rows
    object_columns = set()
    for field in schema:
        if pa.types.is_date(field.type):  # datetime.date objects, one per value
            frame += rows * DATE_BYTES
        elif not (
            pa.types.is_primitive(field.type) or pa.types.is_dictionary(field.type) or pa.types.is_null(field.type)
        ):
            object_columns.add(field.name)  # text, binary, decimals, lists, structs: Python objects
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for leaf in range(row_group.num_columns):
            chunk = row_group.column(leaf)
            if chunk.path_in_schema.split(".")[0] not in object_columns:
                continue
            size, values = chunk.total_uncompressed_size, chunk.num_values
            if values and size >= PLAIN_TEXT_MIN_BYTES * values:
                frame += STR_OVERHEAD * values + size
                held += TEXT_VALUE_BYTES * values  # plain-encoded: mostly distinct values
            else:
                frame += DICTIONARY_TEXT_FACTOR * size
    batch = frame * min(1.0, BATCH_ROWS / rows) if rows else 0
    peak = BASE_BYTES + math.ceil(BATCH_WORKSPACE * batch) + held + column_bytes * columns
    return DatasetMemory(rows, columns, frame, peak)


def check_dataset_memory(
    step: str, parquet_path: str | Path, remedy: str = DATA_STEP_REMEDY, column_bytes: int = 0
) -> None:
    """Stops `step` with MemoryBudgetError, before it reads the dataset at `parquet_path`, when its estimate
    (`dataset_memory`, with `column_bytes` per column) would not fit in its container's memory limit."""
    needed = dataset_memory(parquet_path, column_bytes)
    if needed is not None:
        check_memory(step, needed.peak_bytes, remedy, workload=needed.describe())
