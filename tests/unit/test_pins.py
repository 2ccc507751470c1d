"""The pins of both runtimes: every requirement exact, the serving image running exactly the versions the test suite
runs (its lock is resolved against requirements.txt), and no pin below the floor of a known advisory
(images/security-floors.toml)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.version import InvalidVersion, Version

REPO_ROOT = Path(__file__).resolve().parents[2]
PIPELINE_IN = REPO_ROOT / "requirements.in"
PIPELINE_LOCK = REPO_ROOT / "requirements.txt"
DEV_LOCK = REPO_ROOT / "requirements-dev.txt"
SERVING_IN = REPO_ROOT / "images" / "serving" / "requirements.in"
SERVING_LOCK = REPO_ROOT / "images" / "serving" / "requirements.txt"
FLOORS = REPO_ROOT / "images" / "security-floors.toml"
ALL_FILES = (PIPELINE_IN, PIPELINE_LOCK, SERVING_IN, SERVING_LOCK)
IMAGE_LOCKS = (SERVING_LOCK, PIPELINE_LOCK)  # what the serving and the components image install

# What a pickled scikit-learn pipeline needs, and the server itself: pinned directly in the serving image.
MODEL_LIBRARIES = ("scikit-learn", "numpy", "joblib", "scipy", "pandas")
# Network-facing or parsing packages of the serving image: each must have a row in the floor table.
SERVING_ATTACK_SURFACE = (
    "starlette",
    "fastapi",
    "python-multipart",
    "uvicorn",
    "h11",
    "aiohttp",
    "grpcio",
    "protobuf",
    "orjson",
    "urllib3",
    "requests",
    "cryptography",
)
# The advisories issue 15 names (the seldon-core 1.17.1 wrapper's pins, MLServer 1.7.1's starlette).
NAMED_ADVISORIES = {
    "gunicorn": {"CVE-2024-1135", "CVE-2024-6827"},
    "protobuf": {"CVE-2025-4565"},
    "urllib3": {"CVE-2025-50181"},
    "starlette": {"CVE-2025-54121", "CVE-2025-62727"},
    "werkzeug": set(),
    "cryptography": set(),
    "flask-cors": set(),
}
ADVISORY_ID = re.compile(r"^(CVE-\d{4}-\d{4,}|GHSA(-[23456789cfghjmpqrvwx]{4}){3}|PYSEC-\d{4}-\d+)$")

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
    pip options (lines starting with '-', such as --hash or -c) left out."""
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


def _floors() -> list[dict]:
    return tomllib.loads(FLOORS.read_text())["floor"]


def below_floor(pins: dict[str, str], floors: list[dict]) -> list[str]:
    """'package pinned X < minimum Y (advisories)' for every pinned package below its floor."""
    found = []
    for row in floors:
        pinned = pins.get(_normalise(row["package"]))
        if pinned is not None and Version(pinned) < Version(row["minimum"]):
            advisories = ", ".join(row["advisories"])
            found.append(f"{row['package']} pinned {pinned} < minimum {row['minimum']} ({advisories})")
    return found


def stale_rows(floors: list[dict], *pin_sets: dict[str, str]) -> list[str]:
    """Packages of the table that no lock pins any more: their rows protect nothing and hide the table's age."""
    return [row["package"] for row in floors if not any(_normalise(row["package"]) in pins for pins in pin_sets)]


# --- exact pins, one resolution ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_every_requirement_is_an_exact_pin(path):
    lines = _requirement_lines(path)
    assert lines, f"{path} lists no requirements"
    loose = [f"{path.name}:{number}: {line}" for number, line in lines if not EXACT_PIN.match(_pin_part(line))]
    assert not loose, "requirements must be pinned exactly with ==:\n" + "\n".join(loose)


@pytest.mark.parametrize("serving_file", [SERVING_IN, SERVING_LOCK], ids=["requirements.in", "requirements.txt"])
def test_the_serving_image_runs_exactly_the_versions_the_tests_run(serving_file):
    """.venv (and the components image) install requirements.txt; the serving image must not differ in any
    package, or a model could load differently in production than in every test and in the pipeline."""
    tested, serving = _pins(PIPELINE_LOCK), _pins(serving_file)
    untested = sorted(name for name in serving if name not in tested)
    assert not untested, f"images/serving/{serving_file.name} installs packages requirements.txt lacks: {untested}"
    differing = {name: (version, tested[name]) for name, version in serving.items() if tested[name] != version}
    assert not differing, (
        f"images/serving/{serving_file.name} and requirements.txt pin different versions (serving, tested): "
        f"{differing}; run `make lock`"
    )


def test_the_serving_image_pins_the_model_libraries_and_kserve_directly():
    direct = _pins(SERVING_IN)
    for name in (*MODEL_LIBRARIES, "kserve"):
        assert name in direct, f"images/serving/requirements.in does not pin {name}"
    for name in MODEL_LIBRARIES:
        assert name in _pins(PIPELINE_IN), f"requirements.in does not pin {name}"


@pytest.mark.parametrize("path", [SERVING_IN, SERVING_LOCK, PIPELINE_IN, PIPELINE_LOCK], ids=lambda p: p.name)
def test_kserve_version(path):
    assert _pins(path).get("kserve") == "0.21.0"


@pytest.mark.parametrize("path", [PIPELINE_IN, PIPELINE_LOCK], ids=["requirements.in", "requirements.txt"])
def test_kfp_version(path):
    assert _pins(path).get("kfp") == "2.17.3"


def test_the_serving_image_stays_slim():
    for path in (SERVING_IN, SERVING_LOCK):
        fat = {"kfp", "mlflow", "mlflow-skinny", "evidently", "matplotlib", "boto3"} & set(_pins(path))
        assert not fat, f"{path.relative_to(REPO_ROOT)} must not install {sorted(fat)}"


@pytest.mark.parametrize("path", [*ALL_FILES, DEV_LOCK], ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_seldon_core_is_gone(path):
    """The seldon-core wrapper and its pins (gunicorn 20.1, protobuf 3.20, numpy<2, ...) are retired."""
    assert "seldon-core" not in _pins(path)


def test_no_project_file_imports_seldon_core():
    """The model server is the KServe SDK's; nothing of the project may depend on the retired wrapper."""
    importing = re.compile(r"^\s*(?:import|from)\s+seldon_core\b", re.MULTILINE)
    sources = [
        path
        for path in REPO_ROOT.rglob("*.py")
        if not any(
            part.startswith(".") or part in ("local_state", "build") for part in path.relative_to(REPO_ROOT).parts
        )
    ]
    assert len(sources) > 50  # the scan reaches the project's files
    assert not [str(path.relative_to(REPO_ROOT)) for path in sources if importing.search(path.read_text())]


def test_requirement_line_parser():
    """The pin check itself: what counts as exact and what does not."""
    for line in ("numpy==1.26.4", "Scikit_Learn==1.8.0", "pkg[extra]==2.0 ; python_version >= '3.11'"):
        assert EXACT_PIN.match(line), line
    for line in ("numpy>=1.26", "numpy", "numpy==1.*", "numpy~=1.26", "numpy===1.26.4", "numpy==1.26,<2"):
        assert not EXACT_PIN.match(line), line


# --- the security floor table -----------------------------------------------------------------------------


def test_floor_table_is_well_formed():
    floors = _floors()
    names = [_normalise(row["package"]) for row in floors]
    assert len(names) == len(set(names)), f"a package has two rows: {sorted(n for n in names if names.count(n) > 1)}"
    for row in floors:
        assert set(row) == {"package", "minimum", "advisories", "note"}, row
        assert row["package"] == _normalise(row["package"]), f"write {row['package']!r} as PyPI normalises it"
        try:
            Version(row["minimum"])
        except InvalidVersion:
            pytest.fail(f"{row['package']}: minimum {row['minimum']!r} is not a version")
        assert row["advisories"], f"{row['package']}: no advisory id"
        bad = [advisory for advisory in row["advisories"] if not ADVISORY_ID.match(advisory)]
        assert not bad, f"{row['package']}: not CVE/GHSA/PYSEC ids: {bad}"
        assert row["note"].strip(), f"{row['package']}: say what the advisories are about"


def test_floor_table_covers_the_named_advisories_and_the_serving_attack_surface():
    rows = {row["package"]: set(row["advisories"]) for row in _floors()}
    for package, advisories in NAMED_ADVISORIES.items():
        assert package in rows, f"the floor table has no row for {package}"
        assert advisories <= rows[package], f"{package}: {sorted(advisories - rows[package])} missing"
    serving = _pins(SERVING_LOCK)
    for package in SERVING_ATTACK_SURFACE:
        assert package in serving, f"{package} left the serving image: drop it from SERVING_ATTACK_SURFACE"
        assert package in rows, f"the floor table has no row for {package}, which the serving image installs"


@pytest.mark.parametrize("lock", IMAGE_LOCKS, ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_every_pin_is_at_or_above_its_security_floor(lock):
    found = below_floor(_pins(lock), _floors())
    assert not found, f"{lock.relative_to(REPO_ROOT)} pins versions with known advisories:\n" + "\n".join(found)


def test_floor_table_has_no_stale_rows():
    stale = stale_rows(_floors(), *(_pins(lock) for lock in IMAGE_LOCKS))
    assert not stale, f"no image installs {stale} any more: remove their rows from images/security-floors.toml"


def test_the_floor_check_refuses_the_retired_seldon_wrapper_pins():
    """seldon-core 1.17.1's pins, as issue 15 lists them, each fail the table; a fixed pin passes."""
    seldon_pins = {
        "gunicorn": "20.1.0",
        "protobuf": "3.20.3",
        "werkzeug": "2.2.3",
        "urllib3": "1.26.20",
        "cryptography": "41.0.7",
        "flask-cors": "3.0.10",
        "starlette": "0.46.2",  # MLServer 1.7.1's
    }
    found = below_floor(seldon_pins, _floors())
    assert sorted(line.split()[0] for line in found) == sorted(seldon_pins)
    assert "gunicorn pinned 20.1.0 < minimum 23.0.0 (CVE-2024-1135, CVE-2024-6827)" in found
    # Versions compare as versions, not strings: 0.10 > 0.9, post releases above their release.
    floors = [{"package": "demo", "minimum": "0.9.0", "advisories": ["CVE-2000-0001"], "note": "n"}]
    assert below_floor({"demo": "0.10.0"}, floors) == []
    assert below_floor({"demo": "0.9.0.post1"}, floors) == []
    assert below_floor({"demo": "0.9.0rc1"}, floors) == ["demo pinned 0.9.0rc1 < minimum 0.9.0 (CVE-2000-0001)"]
    assert stale_rows(floors, {"other": "1.0"}, {}) == ["demo"]
