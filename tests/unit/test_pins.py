"""The two runtimes (pipeline steps and the Seldon model server) must agree on every library a pickled model
depends on, and every requirement must be an exact pin, so a model trained in one loads identically in the other."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PIPELINE_IN = REPO_ROOT / "requirements.in"
PIPELINE_LOCK = REPO_ROOT / "requirements.txt"
SERVING_IN = REPO_ROOT / "images" / "serving" / "requirements.in"
SERVING_LOCK = REPO_ROOT / "images" / "serving" / "requirements.txt"
ALL_FILES = (PIPELINE_IN, PIPELINE_LOCK, SERVING_IN, SERVING_LOCK)

# The libraries a pickled scikit-learn pipeline needs, identically, in both runtimes.
SHARED = ("scikit-learn", "numpy", "joblib", "scipy", "pandas")

EXACT_PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)"  # project name
    r"(?:\[[A-Za-z0-9._,\s-]*\])?"  # optional extras
    r"\s*==\s*(?P<version>[A-Za-z0-9.+!_-]+)"  # exact version (no wildcard)
    r"\s*(?:;.*)?$"  # optional environment marker
)


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of each requirement line: comments and blank lines dropped, continuations joined,
    pip options (lines starting with '-', such as --hash) left out."""
    lines: list[tuple[int, str]] = []
    pending, pending_number = "", 0
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        text = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not pending:
            pending_number = number
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        text = (pending + text).strip()
        pending = ""
        if text and not text.startswith("-"):
            lines.append((pending_number, text))
    return lines


def _pin_part(line: str) -> str:
    """The requirement without trailing pip options such as ``--hash=sha256:...``."""
    return line.split(" --", 1)[0].strip()


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for _, line in _requirement_lines(path):
        match = EXACT_PIN.match(_pin_part(line))
        if match:
            pins[_normalise(match["name"])] = match["version"]
    return pins


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_every_requirement_is_an_exact_pin(path):
    lines = _requirement_lines(path)
    assert lines, f"{path} lists no requirements"
    loose = [f"{path.name}:{number}: {line}" for number, line in lines if not EXACT_PIN.match(_pin_part(line))]
    assert not loose, "requirements must be pinned exactly with ==:\n" + "\n".join(loose)


@pytest.mark.parametrize(
    ("pipeline_file", "serving_file"),
    [(PIPELINE_IN, SERVING_IN), (PIPELINE_LOCK, SERVING_LOCK)],
    ids=["requirements.in", "requirements.txt"],
)
def test_shared_libraries_have_identical_pins(pipeline_file, serving_file):
    pipeline, serving = _pins(pipeline_file), _pins(serving_file)
    for name in SHARED:
        assert name in pipeline, f"{pipeline_file} does not pin {name}"
        assert name in serving, f"{serving_file} does not pin {name}"
    differing = {name: (pipeline[name], serving[name]) for name in SHARED if pipeline[name] != serving[name]}
    assert not differing, (
        f"{pipeline_file.name} and images/serving/{serving_file.name} pin different versions "
        f"(pipeline, serving): {differing}"
    )


@pytest.mark.parametrize("path", [SERVING_IN, SERVING_LOCK], ids=["requirements.in", "requirements.txt"])
def test_seldon_core_version(path):
    assert _pins(path).get("seldon-core") == "1.17.1"


@pytest.mark.parametrize("path", [PIPELINE_IN, PIPELINE_LOCK], ids=["requirements.in", "requirements.txt"])
def test_kfp_version(path):
    assert _pins(path).get("kfp") == "2.17.3"


def test_kfp_is_not_in_the_serving_runtime():
    """kfp and seldon-core can never share an environment (protobuf<4, numpy<2 against kfp's needs)."""
    for path in (SERVING_IN, SERVING_LOCK):
        assert "kfp" not in _pins(path), f"{path} must not install kfp"
    for path in (PIPELINE_IN, PIPELINE_LOCK):
        assert "seldon-core" not in _pins(path), f"{path} must not install seldon-core"


def test_requirement_line_parser():
    """The pin check itself: what counts as exact and what does not."""
    for line in ("numpy==1.26.4", "Scikit_Learn==1.8.0", "pkg[extra]==2.0 ; python_version >= '3.11'"):
        assert EXACT_PIN.match(line), line
    for line in ("numpy>=1.26", "numpy", "numpy==1.*", "numpy~=1.26", "numpy===1.26.4", "numpy==1.26,<2"):
        assert not EXACT_PIN.match(line), line
