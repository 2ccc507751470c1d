"""Renders the evaluation reports shown in the README, from sample data, and screenshots them.

Runs the evaluate_model step's logic in-process, exactly as the pipeline does: synthetic house prices
(``components.ingest_data.samples.house_prices``), prepared (cleaned, split), a model trained, saved as a bundle and
loaded back, evaluated with per-neighbourhood slices and fairness across neighbourhoods (``sensitive_columns``) and
rendered by ``components.evaluate_model.report``. It does
so twice, for a regression model (target ``price``) and a classifier (target ``energy_label``), and writes

    <output-dir>/reports/evaluation-regression.html
    <output-dir>/reports/evaluation-classification.html

and, when a headless Chromium is available (``chromium`` or ``chromium-browser`` on PATH, or ``--chromium PATH``),
a full-page screenshot of each:

    <output-dir>/images/evaluation-regression.png
    <output-dir>/images/evaluation-classification.png

Run on demand from the repository root, after a change to the report, and commit the outputs:

    .venv/bin/python docs/render_reports.py

Every step is seeded, so the pages only change when the code (or a library version) does. On Debian, Chromium is
``apt-get install chromium fonts-dejavu-core``; without it the HTML is still written and the PNGs are left as they
are.
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script: docs/ is on sys.path, the repository root is not
    sys.path.insert(0, str(REPO_ROOT))

import model_bundle  # noqa: E402
from components.evaluate_model.logic import evaluate  # noqa: E402
from components.evaluate_model.report import render_report  # noqa: E402
from components.ingest_data.samples import house_prices  # noqa: E402
from components.prepare_data.logic import prepare  # noqa: E402
from components.train_model.logic import train  # noqa: E402

DEFAULT_ROWS = 2000
DATA_SEED = 7
SPLIT_SEED = 42
TRAIN_SEED = 42
SLICE_COLUMN = "neighbourhood"
# The sample has no attribute of people; where a house stands is the classic proxy for one (redlining), so the
# example audits the model across neighbourhoods.
SENSITIVE_COLUMNS = ["neighbourhood"]
BROWSERS = ("chromium", "chromium-browser")
# Wide enough for two plots side by side (a common laptop width); the window is taller than any report and the
# blank rest is cropped.
WINDOW_WIDTH = 1200
WINDOW_HEIGHT = 6000
BROWSER_TIMEOUT_SECONDS = 120
# Blank rows kept below the last content, so the screenshot does not end on the table's border.
BOTTOM_MARGIN = 24


@dataclass(frozen=True)
class Report:
    name: str
    target: str
    task: str


REPORTS = (
    Report("regression", target="price", task="regression"),
    Report("classification", target="energy_label", task="classification"),
)


def render(report: Report, rows: int) -> str:
    """The HTML evaluation report of a model trained for ``report`` on ``rows`` sample rows."""
    frame = house_prices(rows=rows, seed=DATA_SEED)
    prepared = prepare(frame, target=report.target, task=report.task, seed=SPLIT_SEED)
    pipeline, card = train(prepared.train, target=report.target, task=report.task, seed=TRAIN_SEED)
    with tempfile.TemporaryDirectory(prefix="render-reports-") as directory:
        model_bundle.save(directory, pipeline, card)
        bundle = model_bundle.load(directory)
        evaluation = evaluate(
            bundle, prepared.train, prepared.test, slice_column=SLICE_COLUMN, sensitive_columns=SENSITIVE_COLUMNS
        )
        return render_report(evaluation, bundle.card)


def find_chromium(requested: str | None) -> str | None:
    """The browser to use: ``requested`` when given (empty: none), else the first of BROWSERS on PATH."""
    if requested is not None:
        if not requested:
            return None
        found = shutil.which(requested)
        if found is None:
            raise SystemExit(f"--chromium {requested!r}: no such executable")
        return found
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(chromium: str, page: Path, output: Path) -> None:
    """A PNG of the whole of ``page``: a window taller than the page, then the blank bottom cropped (Pillow)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="render-reports-chromium-") as profile:
        command = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--force-device-scale-factor=1",
            f"--user-data-dir={profile}",
            f"--window-size={WINDOW_WIDTH},{WINDOW_HEIGHT}",
            f"--screenshot={output}",
            page.resolve().as_uri(),
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=BROWSER_TIMEOUT_SECONDS)
    if result.returncode != 0 or not output.is_file():
        raise RuntimeError(f"{chromium} exited with {result.returncode} without a screenshot:\n{result.stderr}")
    _crop_and_compress(output)


def _crop_and_compress(path: Path) -> None:
    """Crops the blank rows below the page and stores the PNG with a 256-colour palette: a fraction of the size,
    no visible difference for a page of text and plots. Without Pillow the screenshot is kept as it is."""
    try:
        from PIL import Image, ImageChops
    except ImportError:
        print(f"Pillow is not installed: {path} is kept uncropped and uncompressed")
        return
    with Image.open(path) as opened:
        image = opened.convert("RGB")
    background = Image.new("RGB", image.size, image.getpixel((image.width - 1, image.height - 1)))
    content = ImageChops.difference(image, background).getbbox()
    if content is not None:
        image = image.crop((0, 0, image.width, min(image.height, content[3] + BOTTOM_MARGIN)))
    buffer = io.BytesIO()
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        buffer, format="PNG", optimize=True
    )
    path.write_bytes(buffer.getvalue())
    if image.height >= WINDOW_HEIGHT - BOTTOM_MARGIN:
        print(f"warning: {path} fills the whole {WINDOW_HEIGHT}-pixel window; the page may be cut off")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=REPO_ROOT / "docs",
        help="writes reports/*.html and images/*.png under this directory (default: the repository's docs/)",
    )
    parser.add_argument(
        "--chromium",
        default=None,
        help="the headless browser for screenshots (default: chromium or chromium-browser on PATH; empty: none)",
    )
    parser.add_argument(
        "--rows",
        type=int,
        default=DEFAULT_ROWS,
        help=f"sample rows, before the train/test split (default {DEFAULT_ROWS})",
    )
    arguments = parser.parse_args(argv)

    chromium = find_chromium(arguments.chromium)
    if chromium is None:
        reason = (
            "Screenshots disabled (--chromium '')"
            if arguments.chromium == ""
            else "No Chromium found (chromium or chromium-browser on PATH, or --chromium PATH; on Debian: "
            "apt-get install chromium fonts-dejavu-core)"
        )
        print(f"{reason}: writing the HTML reports only; the screenshots in images/ are left as they are.")
    reports_dir, images_dir = arguments.output_dir / "reports", arguments.output_dir / "images"
    reports_dir.mkdir(parents=True, exist_ok=True)
    for report in REPORTS:
        page = reports_dir / f"evaluation-{report.name}.html"
        page.write_text(render(report, arguments.rows), encoding="utf-8")
        print(f"wrote {page}")
        if chromium is not None:
            image = images_dir / f"evaluation-{report.name}.png"
            screenshot(chromium, page, image)
            print(f"wrote {image} ({image.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
