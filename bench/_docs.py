"""Writes a bench script's figures into docs/benchmarks.md: one `## ` section per measurement, each stamped with
the command that produced it, the date and the machine, so every figure of the project lives in one file.

Every bench script takes ``--write-docs``; after printing its figures it calls::

    write_section("Serving", markdown_table(header, rows), command_line())

Run as ``python bench/<x>.py`` from the repository root, bench/ is first on sys.path: ``import _docs``. A script
that takes bench/ off sys.path (bench/serving.py) puts the repository root there and imports ``bench._docs``.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
import shlex
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS_FILE = REPO_ROOT / "docs" / "benchmarks.md"
WRITE_DOCS_FLAG = "--write-docs"
FENCE = re.compile(r"^\s*(```|~~~)")


def peak_rss_mb(pid: int | str = "self", proc: Path = Path("/proc")) -> float | None:
    """The peak resident memory (``VmHWM``) of process ``pid`` in MB, or None when it has ended.

    Not ``ru_maxrss``: for a child started by ``subprocess`` (vfork + exec) that also counts the parent's peak, and
    for a forked child the pages it inherited; ``VmHWM`` belongs to the program the process runs now.
    """
    try:
        text = (proc / str(pid) / "status").read_text()
    except OSError:
        return None
    found = re.search(r"^VmHWM:\s*(\d+) kB", text, re.MULTILINE)
    return int(found[1]) / 1024 if found else None


def machine(proc: Path = Path("/proc")) -> str:
    """'<CPU model>, <n> cores, <m> GiB', read from /proc (what a Linux machine and a container both have);
    outside Linux the platform's processor name and os.cpu_count(), and memory 'unknown'."""
    model, cores, memory = "", 0, "memory unknown"
    try:
        cpuinfo = (proc / "cpuinfo").read_text()
        models = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
        model = models[0].strip() if models else ""
        cores = len(re.findall(r"^processor\s*:", cpuinfo, re.MULTILINE))
    except OSError:
        pass
    try:
        total_kb = re.search(r"^MemTotal:\s*(\d+) kB", (proc / "meminfo").read_text(), re.MULTILINE)
        if total_kb:
            memory = f"{int(total_kb[1]) / 2**20:.0f} GiB"
    except OSError:
        pass
    model = model or platform.processor() or platform.machine() or "unknown CPU"
    cores = cores or os.cpu_count() or 0
    return f"{model}, {cores} cores, {memory}"


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command as a reader would type it from the repository root, without ``--write-docs``:
    ``.venv/bin/python bench/serving.py --seconds 10``."""
    argv = list(sys.argv if argv is None else argv)
    script = Path(argv[0]).resolve()
    script_text = str(script.relative_to(REPO_ROOT)) if script.is_relative_to(REPO_ROOT) else argv[0]
    executable = Path(sys.executable)
    # The venv's python is a symlink: compare the path as given, not its target.
    absolute = executable if executable.is_absolute() else Path.cwd() / executable
    python = str(absolute.relative_to(REPO_ROOT)) if absolute.is_relative_to(REPO_ROOT) else "python"
    return shlex.join([python, script_text, *(arg for arg in argv[1:] if arg != WRITE_DOCS_FLAG)])


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table; cells are str()-ed, pipes escaped."""

    def line(cells: Sequence[object]) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(header), "|" + "---|" * len(header), *(line(row) for row in rows)])


def _section_bounds(lines: list[str], heading: str) -> tuple[int, int] | None:
    """(first line, line after the last) of the section under ``heading``, ignoring headings in code fences."""
    start = None
    in_fence = False
    for index, line in enumerate(lines):
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence or not line.startswith("## "):
            continue
        if start is not None:
            return start, index
        if line.rstrip() == heading:
            start = index
    return None if start is None else (start, len(lines))


def write_section(
    section: str,
    body: str,
    command: str,
    *,
    path: Path | None = None,
    date: str | None = None,
    machine_text: str | None = None,
) -> Path:
    """Replaces the section headed ``## {section}`` of ``path`` (up to the next ``## `` heading; appended at the end
    when there is none) with the heading, "Measured with `{command}` on {date} on {machine}." and ``body``
    (Markdown). ``path`` defaults to docs/benchmarks.md, ``date`` to today (ISO), ``machine_text`` to
    :func:`machine`. Returns the file written."""
    path = BENCHMARKS_FILE if path is None else path
    if not section.strip() or "\n" in section:
        raise ValueError(f"section must be one non-empty line, got {section!r}")
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: the benchmarks file is written into, never created")
    heading = f"## {section.strip()}"
    stamp = f"Measured with `{command}` on {date or datetime.date.today().isoformat()} on {machine_text or machine()}."
    new = [heading, "", stamp, "", *body.strip("\n").splitlines(), ""]
    lines = path.read_text(encoding="utf-8").splitlines()
    bounds = _section_bounds(lines, heading)
    if bounds is None:
        while lines and not lines[-1].strip():
            lines.pop()
        lines += ["", *new]
    else:
        start, end = bounds
        lines[start:end] = new
    while lines and not lines[-1].strip():
        lines.pop()
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
