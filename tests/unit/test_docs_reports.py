"""docs/render_reports.py: the README's evaluation reports are rendered self-contained, and the screenshots the
README shows are in the repository."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "docs" / "render_reports.py"
NAMES = ("regression", "classification")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The screenshots are committed: keep them small enough not to bloat the repository.
MAX_PNG_BYTES = 500_000


@pytest.fixture(scope="module")
def render_reports():
    spec = importlib.util.spec_from_file_location("docs_render_reports", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs, as an import would: its dataclass looks its module up.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.fixture(scope="module")
def output_dir(tmp_path_factory, render_reports) -> Path:
    directory = tmp_path_factory.mktemp("docs")
    # No browser: the test must not depend on Chromium being installed, nor write screenshots.
    assert render_reports.main(["--output-dir", str(directory), "--rows", "400", "--chromium", ""]) == 0
    return directory


@pytest.mark.parametrize("name", NAMES)
def test_reports_are_self_contained_html(output_dir, name):
    page = (output_dir / "reports" / f"evaluation-{name}.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "Metrics per value of neighbourhood" in page
    assert '<img src="data:image/png;base64,' in page
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page.lower()
    sources = re.findall(r'\b(?:src|href)="([^"]*)"', page)
    assert sources and all(source.startswith("data:image/png;base64,") for source in sources)


def test_without_a_browser_no_screenshots_are_written(output_dir):
    assert not (output_dir / "images").exists()


@pytest.mark.parametrize("name", NAMES)
def test_the_readme_screenshots_are_committed_pngs(name):
    image = REPO_ROOT / "docs" / "images" / f"evaluation-{name}.png"
    assert image.is_file(), f"{image} is missing: run .venv/bin/python docs/render_reports.py"
    content = image.read_bytes()
    assert content.startswith(PNG_SIGNATURE)
    assert len(content) < MAX_PNG_BYTES
