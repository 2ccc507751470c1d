"""The memory guard (components/_common/memory.py): the cgroup limit as the kernel enforces it, the stop with its
message, the estimate against a measured step, and validate_data / prepare_data stopping before they read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
from kfp import dsl

from components._common import memory
from components._common.datasets import write_dataset
from components._common.memory import (
    DATA_STEP_REMEDY,
    MemoryBudgetError,
    check_memory,
    dataset_memory,
    memory_limit,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
MIB, GIB = 2**20, 2**30
V1_NO_LIMIT = "9223372036854771712\n"  # what cgroup v1 writes for "no limit"


def cgroup(tmp_path: Path, proc: str, files: dict[str, str]) -> tuple[Path, Path]:
    """A fake /sys/fs/cgroup (files by path under it) and /proc/self/cgroup (`proc`)."""
    root = tmp_path / "cgroup"
    root.mkdir()
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    proc_cgroup = tmp_path / "proc-self-cgroup"
    proc_cgroup.write_text(proc)
    return root, proc_cgroup


# --- the limit -----------------------------------------------------------------------------------------------------


def test_v2_container_with_its_own_cgroup_namespace_reads_its_memory_max(tmp_path):
    # Kubernetes and Docker on cgroup v2: the container's cgroup is the namespace's root, "/".
    root, proc = cgroup(tmp_path, "0::/\n", {"cgroup.controllers": "cpu memory\n", "memory.max": f"{2 * GIB}\n"})

    assert memory_limit(root, proc) == 2 * GIB


def test_v2_max_is_no_limit(tmp_path):
    root, proc = cgroup(tmp_path, "0::/\n", {"cgroup.controllers": "memory\n", "memory.max": "max\n"})

    assert memory_limit(root, proc) is None


def test_v2_takes_the_smallest_limit_of_the_cgroup_and_its_parents(tmp_path):
    path = "kubepods.slice/kubepods-pod1.slice/cri-containerd-abc.scope"
    files = {
        "cgroup.controllers": "memory\n",
        "kubepods.slice/memory.max": f"{20 * GIB}\n",
        "kubepods.slice/kubepods-pod1.slice/memory.max": f"{GIB}\n",  # the pod's limit, below the container's
        f"{path}/memory.max": "max\n",
    }
    root, proc = cgroup(tmp_path, f"0::/{path}\n", files)

    assert memory_limit(root, proc) == GIB


def test_v2_in_the_hybrid_layout_is_read_under_unified(tmp_path):
    files = {"unified/user.slice/memory.max": f"{512 * MIB}\n", "cpu/tasks": ""}
    root, proc = cgroup(tmp_path, "2:cpu,cpuacct:/\n1:name=systemd:/user.slice\n0::/user.slice\n", files)

    assert memory_limit(root, proc) == 512 * MIB


def test_v1_reads_the_memory_controllers_limit_in_bytes(tmp_path):
    files = {
        "memory/memory.limit_in_bytes": V1_NO_LIMIT,
        "memory/docker/abc/memory.limit_in_bytes": f"{3 * GIB}\n",
    }
    root, proc = cgroup(tmp_path, "5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/\n", files)

    assert memory_limit(root, proc) == 3 * GIB


def test_v1_container_without_a_cgroup_namespace_finds_its_limit_at_the_root(tmp_path):
    # Docker on v1: /proc/self/cgroup names the host's cgroup, which the container sees mounted as the root.
    root, proc = cgroup(tmp_path, "4:memory:/docker/abc\n", {"memory/memory.limit_in_bytes": f"{GIB}\n"})

    assert memory_limit(root, proc) == GIB


def test_v1_nested_path_with_a_smaller_parent_limit(tmp_path):
    files = {
        "memory/memory.limit_in_bytes": V1_NO_LIMIT,
        "memory/batch/memory.limit_in_bytes": f"{768 * MIB}\n",
        "memory/batch/job/memory.limit_in_bytes": f"{4 * GIB}\n",
    }
    root, proc = cgroup(tmp_path, "4:memory:/batch/job\n", files)

    assert memory_limit(root, proc) == 768 * MIB


def test_v1_unlimited_is_no_limit(tmp_path):
    root, proc = cgroup(tmp_path, "4:memory:/x\n", {"memory/x/memory.limit_in_bytes": V1_NO_LIMIT})

    assert memory_limit(root, proc) is None


@pytest.mark.parametrize(
    ("proc_text", "files"),
    [
        ("0::/\n", {}),  # no memory.max (the real root cgroup has none)
        ("4:memory:/x\n", {}),
        ("4:memory:/x\n", {"memory/x/memory.limit_in_bytes": "lots\n"}),  # unreadable content
        ("", {"memory.max": f"{GIB}\n"}),  # no cgroup line at all
        ("garbage\n", {"memory.max": f"{GIB}\n"}),
    ],
)
def test_a_limit_that_cannot_be_found_is_unknown(tmp_path, proc_text, files):
    root, proc = cgroup(tmp_path, proc_text, files)

    assert memory_limit(root, proc) is None


def test_no_proc_cgroup_is_unknown(tmp_path):
    assert memory_limit(tmp_path, tmp_path / "missing") is None


# --- the stop ------------------------------------------------------------------------------------------------------


def test_the_message_names_the_step_the_estimate_the_limit_and_what_to_change():
    with pytest.raises(MemoryBudgetError) as stopped:
        check_memory(
            "validate_data",
            5_900 * MIB,
            DATA_STEP_REMEDY,
            limit=2 * GIB,
            workload="for 20,000,000 rows x 15 columns",
        )

    assert str(stopped.value) == (
        "validate_data needs about 5,900 MB for 20,000,000 rows x 15 columns but its container may use 2,048 MB "
        "(cgroup memory limit, 5% of it kept free): raise the pipeline parameter `data_memory_limit` (the memory "
        "limit of ingest, validate and prepare; default 1Gi), e.g. `data_memory_limit=7Gi`; in a pipeline of your "
        "own, `.set_memory_limit('7Gi')` on this task"
    )
    assert (stopped.value.step, stopped.value.estimate, stopped.value.limit) == ("validate_data", 5_900 * MIB, 2 * GIB)


def test_an_estimate_within_the_limit_less_the_headroom_passes_and_one_above_it_stops():
    check_memory("prepare_data", 950 * MIB, "raise it", limit=1000 * MIB)  # exactly 95%

    with pytest.raises(MemoryBudgetError, match="prepare_data needs about 951 MB but its container may use 1,000 MB"):
        check_memory("prepare_data", 951 * MIB, "raise it", limit=1000 * MIB)


def test_an_unknown_limit_means_no_check(monkeypatch):
    check_memory("validate_data", 10**15, "raise it", limit=None)

    monkeypatch.setattr(memory, "memory_limit", lambda: None)
    check_memory("validate_data", 10**15, "raise it")


def test_the_limit_defaults_to_the_cgroups(monkeypatch):
    monkeypatch.setattr(memory, "memory_limit", lambda: 100 * MIB)

    with pytest.raises(MemoryBudgetError, match="may use 100 MB"):
        check_memory("validate_data", 200 * MIB, "raise it")


def test_the_remedy_names_the_pipelines_data_memory_limit_parameter():
    from pipelines._kubernetes import DATA_MEMORY_LIMIT, POD_SETTINGS

    assert f"`{DATA_MEMORY_LIMIT.parameter}=" in DATA_STEP_REMEDY
    assert f"default {DATA_MEMORY_LIMIT.default}" in DATA_STEP_REMEDY
    assert POD_SETTINGS["validate_data"].memory_limit == POD_SETTINGS["prepare_data"].memory_limit == DATA_MEMORY_LIMIT


# --- the estimate --------------------------------------------------------------------------------------------------

STEP_SCRIPT = r"""
import sys
from pathlib import Path
from kfp import dsl
step, work = sys.argv[1], Path(sys.argv[2])
def art(kind, name):
    return kind(name=name, uri=str(work / step / name), metadata={})
dataset = dsl.Dataset(name="dataset", uri=str(work / "dataset.parquet"), metadata={})
if step == "validate_data":
    from components.validate_data.component import validate_data
    validate_data.python_func(dataset=dataset, target="price", schema=art(dsl.Artifact, "schema"),
                              report=art(dsl.Markdown, "report"), metrics=art(dsl.Metrics, "metrics"))
else:
    from components.prepare_data.component import prepare_data
    prepare_data.python_func(dataset=dataset, target="price", task="regression", train=art(dsl.Dataset, "train"),
                             test=art(dsl.Dataset, "test"), reference_profile=art(dsl.Artifact, "profile"),
                             cleaning_report=art(dsl.Markdown, "cleaning"), metrics=art(dsl.Metrics, "metrics"))
# This process's own peak: VmHWM belongs to the memory of the program exec'd, while ru_maxrss also counts the
# parent's peak when the child was started by vfork (subprocess does), i.e. pytest's own size.
print(next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM:")))
"""


@pytest.fixture(scope="module")
def bench_parquet(tmp_path_factory) -> Path:
    """200,000 rows of bench/data.py's table (11 numeric, 4 categorical columns) and a unique text column, as
    ingest writes a dataset."""
    from bench.data import generate

    work = tmp_path_factory.mktemp("memory-estimate")
    generate(work / "bench.csv", 200_000)
    table = pa_csv.read_csv(work / "bench.csv")
    ids = pa.array([f"listing-{i:09d}" for i in range(table.num_rows)])
    write_dataset(table.append_column("listing_id", ids), work / "dataset.parquet")
    return work


@pytest.mark.parametrize("step", ["validate_data", "prepare_data"])
def test_the_estimate_covers_the_steps_measured_peak_with_a_small_margin(bench_parquet, step):
    estimate = dataset_memory(bench_parquet / "dataset.parquet")
    assert (estimate.rows, estimate.columns) == (200_000, 16)
    (bench_parquet / step).mkdir(exist_ok=True)

    child = subprocess.run(
        [sys.executable, "-c", STEP_SCRIPT, step, str(bench_parquet)], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert child.returncode == 0, child.stderr[-2000:]
    peak = int(child.stdout.strip().splitlines()[-1].split()[1]) * 1024  # "VmHWM:  123456 kB": the step's own peak

    assert estimate.peak_bytes >= peak, f"{step}: estimate {estimate.peak_bytes / MIB:.0f} MB, peak {peak / MIB:.0f}"
    assert estimate.peak_bytes <= 1.5 * peak  # an over-estimate, not a guess that stops steps that would fit


def test_text_values_cost_more_than_numbers_and_a_bad_file_is_not_estimated(tmp_path):
    rows = 100_000
    numbers = pa.table({"x": pa.array(range(rows), pa.float64())})
    text = pa.table({"x": pa.array([f"value-{i:012d}" for i in range(rows)])})
    write_dataset(numbers, tmp_path / "numbers.parquet")
    write_dataset(text, tmp_path / "text.parquet")
    (tmp_path / "broken.parquet").write_text("not parquet")

    assert dataset_memory(tmp_path / "numbers.parquet").frame_bytes == rows * 8
    # Each unique text value: a pointer (8), a Python str (49 bytes + 18 characters).
    assert 70 * rows <= dataset_memory(tmp_path / "text.parquet").frame_bytes <= 85 * rows
    assert dataset_memory(tmp_path / "broken.parquet") is None
    assert dataset_memory(tmp_path / "missing.parquet") is None


# --- the steps stop before they read -------------------------------------------------------------------------------


@pytest.fixture
def tiny_limit(monkeypatch):
    """A 64 MiB container, and the steps' readers failing the test if a step reads the dataset anyway."""
    monkeypatch.setattr(memory, "memory_limit", lambda: 64 * MIB)

    def reader(path, *args, **kwargs):
        raise AssertionError(f"the step read {path} although it could not fit")

    for name in ("components.validate_data.logic.validate_file", "components.prepare_data.logic.prepare_file"):
        monkeypatch.setattr(name, reader)


def test_validate_data_stops_naming_the_estimate_the_limit_and_the_parameter(sample_dataset, artifact, tiny_limit):
    from components.validate_data.component import validate_data

    dataset, _, _ = sample_dataset
    report = artifact(dsl.Markdown, "report")

    with pytest.raises(MemoryBudgetError) as stopped:
        validate_data.python_func(
            dataset=dataset,
            target="price",
            schema=artifact(dsl.Artifact, "schema"),
            report=report,
            metrics=artifact(dsl.Metrics, "metrics"),
        )

    message = str(stopped.value)
    assert message.startswith("validate_data needs about ")
    assert "for 200 rows x " in message and "may use 64 MB (cgroup memory limit" in message
    assert "`data_memory_limit=1Gi`" in message
    assert not Path(report.path).exists()


def test_prepare_data_stops_naming_the_estimate_the_limit_and_the_parameter(sample_dataset, artifact, tiny_limit):
    from components.prepare_data.component import prepare_data

    dataset, _, _ = sample_dataset
    train = artifact(dsl.Dataset, "train")

    with pytest.raises(MemoryBudgetError, match=r"^prepare_data needs about [\d,]+ MB for 200 rows x \d+ columns but "):
        prepare_data.python_func(
            dataset=dataset,
            target="price",
            task="regression",
            train=train,
            test=artifact(dsl.Dataset, "test"),
            reference_profile=artifact(dsl.Artifact, "profile"),
            cleaning_report=artifact(dsl.Markdown, "cleaning"),
            metrics=artifact(dsl.Metrics, "metrics"),
        )

    assert not Path(train.path).exists()


def test_validate_data_counts_its_leakage_check_per_column_unless_it_is_off(
    tmp_path, artifact, tiny_limit, monkeypatch
):
    """The leakage check fits models on a fixed sample of every column: wide data needs memory the batches do not
    show (2,000 rows x 10,001 columns peaked at 1,986 MB against an estimate of 960 MB before it was counted)."""
    from components.validate_data.component import validate_data
    from components.validate_data.leakage import MEMORY_PER_COLUMN

    columns = 2_000
    path = tmp_path / "wide.parquet"
    write_dataset(pd.DataFrame({f"f{i}": [0.5, 1.5, 2.5] for i in range(columns)} | {"price": [1.0, 2.0, 3.0]}), path)
    without = memory.dataset_memory(path).peak_bytes
    assert memory.dataset_memory(path, MEMORY_PER_COLUMN).peak_bytes == without + MEMORY_PER_COLUMN * (columns + 1)
    # Room for the batches and half the check.
    room = (without + MEMORY_PER_COLUMN * columns // 2) / (1 - memory.HEADROOM)
    monkeypatch.setattr(memory, "memory_limit", lambda: int(room))
    dataset = artifact(dsl.Dataset, "dataset")
    write_dataset(pd.read_parquet(path), dataset.path)

    def run(**policy):
        validate_data.python_func(
            dataset=dataset,
            target="price",
            schema=artifact(dsl.Artifact, "schema"),
            report=artifact(dsl.Markdown, "report"),
            metrics=artifact(dsl.Metrics, "metrics"),
            **policy,
        )

    with pytest.raises(MemoryBudgetError, match=r"^validate_data needs about [\d,]+ MB for 3 rows x 2,001 columns"):
        run()
    with pytest.raises(AssertionError, match="the step read"):  # past the check: the batches alone fit
        run(validation_policy={"leakage": "ignore"})
