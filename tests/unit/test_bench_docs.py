"""bench/_docs.py: a bench script's --write-docs replaces exactly its own section of docs/benchmarks.md, stamped
with the command, date and machine, and leaves every other section as it was."""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
from pathlib import Path

import pytest

from bench import _docs

REPO_ROOT = Path(__file__).resolve().parents[2]
STAMP = {"date": "2030-01-02", "machine_text": "Test CPU @ 1.00GHz, 4 cores, 8 GiB"}
STAMP_LINE = "on 2030-01-02 on Test CPU @ 1.00GHz, 4 cores, 8 GiB."


@pytest.fixture
def benchmarks(tmp_path) -> Path:
    copy = tmp_path / "benchmarks.md"
    shutil.copy(REPO_ROOT / "docs" / "benchmarks.md", copy)
    return copy


def sections(text: str) -> dict[str, str]:
    """{heading: the section's text} for every `## ` heading outside code fences."""
    lines = text.splitlines()
    found, heading, in_fence = {}, None, False
    for line in lines:
        if _docs.FENCE.match(line):
            in_fence = not in_fence
        if not in_fence and line.startswith("## "):
            heading = line
            found[heading] = ""
        if heading is not None:
            found[heading] += line + "\n"
    return found


def test_an_existing_section_is_replaced_and_every_other_kept(benchmarks):
    before = sections(benchmarks.read_text())
    assert "## Serving" in before and len(before) >= 3

    _docs.write_section(
        "Serving", "| a | b |\n|---|---|\n| 1 | 2 |", "python bench/serving.py", path=benchmarks, **STAMP
    )

    after = sections(benchmarks.read_text())
    assert list(after) == list(before)
    assert after["## Serving"] == (
        "## Serving\n\n"
        "Measured with `python bench/serving.py` on 2030-01-02 on Test CPU @ 1.00GHz, 4 cores, 8 GiB.\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n"
    )
    assert {h: t for h, t in after.items() if h != "## Serving"} == {
        h: t for h, t in before.items() if h != "## Serving"
    }


def test_writing_the_same_figures_twice_changes_nothing(benchmarks):
    _docs.write_section("Serving", "figures", "python bench/serving.py", path=benchmarks, **STAMP)
    once = benchmarks.read_text()

    _docs.write_section("Serving", "figures", "python bench/serving.py", path=benchmarks, **STAMP)

    assert benchmarks.read_text() == once


def test_a_missing_section_is_appended_at_the_end(benchmarks):
    before = benchmarks.read_text()

    _docs.write_section("Something new", "new figures", "python bench/new.py", path=benchmarks, **STAMP)

    text = benchmarks.read_text()
    assert text.startswith(before.rstrip("\n") + "\n\n## Something new\n\nMeasured with `python bench/new.py`")
    assert text.endswith("\n\nnew figures\n")


def test_a_heading_inside_a_code_fence_is_not_a_section(tmp_path):
    path = tmp_path / "benchmarks.md"
    path.write_text("# Benchmarks\n\n## A\n\n```\n## B\n```\n\n## C\n\nc\n")

    _docs.write_section("A", "a", "cmd", path=path, **STAMP)

    assert path.read_text() == (
        "# Benchmarks\n\n## A\n\nMeasured with `cmd` on 2030-01-02 on Test CPU @ 1.00GHz, 4 cores, 8 GiB.\n\na\n\n"
        "## C\n\nc\n"
    )


def test_a_longer_heading_with_the_same_start_is_another_section(tmp_path):
    path = tmp_path / "benchmarks.md"
    path.write_text("# Benchmarks\n\n## Serving speed\n\nkept\n")

    _docs.write_section("Serving", "new", "cmd", path=path, **STAMP)

    assert "## Serving speed\n\nkept\n" in path.read_text()
    assert path.read_text().endswith(
        "## Serving\n\nMeasured with `cmd` on 2030-01-02 on Test CPU @ 1.00GHz, 4 cores, 8 GiB.\n\nnew\n"
    )


def test_a_bad_section_name_or_a_missing_file_is_refused(tmp_path, benchmarks):
    with pytest.raises(ValueError, match="section"):
        _docs.write_section("two\nlines", "x", "cmd", path=benchmarks, **STAMP)
    with pytest.raises(FileNotFoundError, match=r"nothing\.md"):
        _docs.write_section("A", "x", "cmd", path=tmp_path / "nothing.md", **STAMP)


def test_the_machine_is_read_from_proc(tmp_path):
    (tmp_path / "cpuinfo").write_text(
        "processor\t: 0\nmodel name\t: Example CPU @ 2.80GHz\n\nprocessor\t: 1\nmodel name\t: Example CPU @ 2.80GHz\n"
    )
    (tmp_path / "meminfo").write_text("MemTotal:       24684092 kB\nMemFree: 1 kB\n")

    assert _docs.machine(tmp_path) == "Example CPU @ 2.80GHz, 2 cores, 24 GiB"


def test_without_proc_the_machine_is_still_named(tmp_path):
    described = _docs.machine(tmp_path / "absent")

    assert described.endswith("memory unknown") and " cores, " in described


def test_the_command_is_what_to_type_from_the_repository_root_without_write_docs(monkeypatch):
    monkeypatch.setattr(sys, "executable", str(REPO_ROOT / ".venv" / "bin" / "python"))
    argv = [str(REPO_ROOT / "bench" / "serving.py"), "--seconds", "10", "--write-docs", "--model-type", "a b"]

    assert _docs.command_line(argv) == ".venv/bin/python bench/serving.py --seconds 10 --model-type 'a b'"


def test_a_markdown_table_escapes_pipes():
    assert _docs.markdown_table(["a", "b"], [[1, "x|y"]]) == "| a | b |\n|---|---|\n| 1 | x\\|y |"


@pytest.fixture
def bench_module(monkeypatch):
    """Imports a bench script as a module; what its import changes (OMP_NUM_THREADS, sys.path) is restored."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setattr(sys, "path", list(sys.path))
    return lambda name: importlib.import_module(f"bench.{name}")


SERVING_RESULT = {
    **{f"server_{key}": value for key, value in (("p50_ms", 15.87), ("p99_ms", 31.79), ("health_p50_ms", 2.38))},
    **{f"fastapi_{key}": value for key, value in (("p50_ms", 16.16), ("p99_ms", 27.04), ("health_p50_ms", 1.01))},
    **{"server_rps_c1": 60.4, "server_rps_c8": 170.2, "server_rps_c32": 317.0},
    **{"fastapi_rps_c1": 62.5, "fastapi_rps_c8": 68.2, "fastapi_rps_c32": 65.2},
    **{"server_p99_ms_c1": 20.0, "server_p99_ms_c8": 74.9, "server_p99_ms_c32": 261.0},
    **{"fastapi_p99_ms_c1": 21.0, "fastapi_p99_ms_c8": 224.7, "fastapi_p99_ms_c32": 823.7},
    **{"server_rows_per_s_1k": 34608, "server_rows_per_s_10k": 65637, "server_mismatches_1k": 0, "server_errors": 0},
    **{"fastapi_rows_per_s_1k": 33884, "fastapi_rows_per_s_10k": 66346, "fastapi_mismatches_1k": 0},
    **{"fastapi_errors": 0, "raw_p50_ms": 10.07, "raw_p99_ms": 16.55, "raw_rows_per_s_1k": 48620},
    **{"raw_rows_per_s_10k": 94312, "rps_c8_ratio": 2.5, "goal_rps_c8": True, "stretch_rps_c8": True},
    **{"goal_p50": False, "goal_rows_10k": True, "goal_no_errors": True, "seconds": 10.0, "cpu_count": 2},
}


def test_the_serving_bench_writes_its_table_and_goals(bench_module):
    serving = bench_module("serving")
    args = argparse.Namespace(model_type="hist_gradient_boosting", rows=5000, seconds=10.0)

    text = serving.comparison_markdown(SERVING_RESULT, args)

    assert "| single-row p50 / p99 ms | 15.87 / 31.79 | 16.16 / 27.04 | 10.07 / 16.55 |" in text
    assert "| req/s, concurrency 8 (p99 ms) | 170.2 (74.9) | 68.2 (224.7) |  |" in text
    assert "| rows/s, 10,000-row batches | 65,637 | 66,346 | 94,312 |" in text
    assert "- req/s at concurrency 8 ≥ 1.5x the FastAPI endpoint: holds, 2.50x (stretch 2x holds)" in text
    assert "- 10,000-row batches ≥ 60% of raw rows/s: holds, 70%" in text
    assert "- single-row p50 ≤ raw predict + 1.5 ms: missed, raw + 5.8 ms (the FastAPI endpoint: raw + 6.1 ms)" in text


def test_the_serving_load_test_writes_its_row_and_goal(bench_module):
    serving = bench_module("serving")
    result = {"load_seconds": 60.0, "concurrency": 32, "requests": 21250, "errors": 0, "rps": 353.9}
    result |= {"p50_ms": 82.1, "p99_ms": 240.8, "max_ms": 278.9, "goal_load": True}

    text = serving.load_test_markdown(result)

    assert "| 32 | 60 | 21,250 | 0 | 353.9 | 82.1 | 240.8 | 278.9 |" in text
    assert "60 s at concurrency 32 with 0 errors: holds" in text


def test_the_model_typing_bench_writes_its_table(bench_module):
    model_typing = bench_module("model_typing")
    figures = {"single_row_ms_before": 10.5, "single_row_ms_after": 11.2}
    figures |= {"rows_per_s_10k_before": 110635, "rows_per_s_10k_after": 108656}

    text = model_typing.markdown(figures, 5000)

    assert "| single-row mean ms | 10.50 | 11.20 |" in text
    assert "| rows/s, 10,000-row batch | 110,635 | 108,656 |" in text


def test_the_image_bench_writes_sizes_distributions_and_timings(bench_module):
    images = bench_module("images")
    row = {"image": "kfp-mlops-serving:1", "image_mb": 493.2, "goal_mb": 500, "goal_met": True}
    row |= {"base": "kfp-mlops-base:bookworm", "base_mb": 130.0, "python": "3.11.14", "site_packages_mb": 367.0}
    row |= {"pyc_mb": 59.0, "tests_mb": 0.0, "share_mb": {"doc": 2.0, "man": 0.0, "locale": 0.0}}
    row["distributions"] = {"scipy": {"version": "1", "bytes": 89.8e6}, "numpy": {"version": "2", "bytes": 49.7e6}}
    row["timings"] = {"cold start to ready s": {"runs": [2.38, 2.25], "median": 2.31, "pyc_written": 0}}

    text = images.markdown([row], 1, (0.72, 1.89))

    assert (
        "| `kfp-mlops-serving:1` | 493 | 500 (met) | `kfp-mlops-base:bookworm` | 130 | 367 | 59 | 0.0 | 2 / 0 / 0 |"
        in text
    )
    assert "its 1 largest distributions, MB: scipy 89.8." in text
    assert "- cold start to ready s: median 2.31 (2.38, 2.25)" in text
    assert "0.72 / 1.89" in text


def test_a_load_test_shorter_than_the_goal_is_not_called_a_pass_or_a_miss(bench_module):
    serving = bench_module("serving")
    result = {"load_seconds": 3.0, "concurrency": 4, "requests": 121, "errors": 0, "rps": 39.3}
    result |= {"p50_ms": 102.3, "p99_ms": 123.1, "max_ms": 125.1, "goal_load": False}

    assert "with 0 errors: not measured (a shorter or lower run)" in serving.load_test_markdown(result)
    result |= {"load_seconds": 60.0, "concurrency": 32, "errors": 2}
    assert "with 0 errors: missed." in serving.load_test_markdown(result)
