"""Wall time and peak memory of ingest, validate and prepare on a large CSV, against a bare pyarrow read.

    .venv/bin/python bench/data.py [--rows 5000000] [--data-dir DIR] [--keep] [--write-docs]

Generates (once; cached in --data-dir, by row count) a CSV of numeric, integer and categorical columns with
missing values and a numeric target, then runs each measurement in its own process, so each peak RSS is that
step's alone: (a) pyarrow.csv.read_csv, the floor; (b) pandas.read_csv with defaults; (c) ingest (read_source,
then write_dataset to Parquet); (d) validate on that Parquet; (e) prepare, writing train and test Parquet and
profiling the training rows. Prints a table, the two goals and, last, one JSON line. ``--write-docs`` also writes
the table and the goals into docs/benchmarks.md ("Large data").
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench import _docs  # noqa: E402

TARGET = "price"
CHUNK_ROWS = 500_000
CATEGORIES = {  # column -> distinct values
    "region": [f"region_{i:02d}" for i in range(12)],
    "property_type": ["apartment", "house", "townhouse", "studio", "villa"],
    "energy_label": list("ABCDEFG"),
    "agency": [f"agency_{i:03d}" for i in range(150)],
}
STEPS = ("pyarrow", "pandas", "ingest", "validate", "prepare")
# Why the pipeline's wall time is a multiple of the floor, whatever the run: written under the figures.
WHERE_TIME_GOES = (
    "Ingest parses with pyarrow, in one pass that also checks every row's shape. Validate and prepare work on pandas "
    "frames: every text value becomes a Python object when a step reads the Parquet dataset, and prepare converts "
    "its train and test frames back to Arrow to write them. Meeting the time goal means computing the schema, "
    "cleaning and split on Arrow tables end to end."
)
STEP_NAMES = {  # as docs/benchmarks.md describes each measurement
    "pyarrow": "bare `pyarrow.csv.read_csv` (the floor)",
    "pandas": "`pandas.read_csv` with defaults",
    "ingest": "ingest (CSV to Parquet, rows checked, content hash)",
    "validate": "validate (schema, data checks, report)",
    "prepare": "prepare (cleaning, split, two Parquet files, reference profile)",
}


def generate(path: Path, rows: int, seed: int = 7) -> None:
    """Writes ``rows`` rows in chunks (vectorised numpy, pyarrow's CSV writer); 15 columns."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    rng = np.random.default_rng(seed)
    tmp = path.with_suffix(".partial")
    writer = None
    try:
        for start in range(0, rows, CHUNK_ROWS):
            n = min(CHUNK_ROWS, rows - start)
            size = np.round(np.clip(rng.lognormal(np.log(95), 0.35, n), 25, 400), 1)
            rooms = np.clip(np.round(size / 28 + rng.normal(0, 0.8, n)), 1, 10).astype(np.int64)
            age = np.clip(rng.gamma(2.0, 18.0, n), 0, 150).round().astype(np.int64)
            floor = rng.integers(0, 30, n)
            distance = np.round(np.clip(rng.exponential(6.0, n), 0.2, 45), 2)
            lat = np.round(rng.uniform(51.8, 52.6, n), 6)
            lon = np.round(rng.uniform(4.2, 5.4, n), 6)
            lot = np.round(rng.gamma(2.0, 150.0, n), 1)
            tax = np.round(rng.normal(1500, 400, n), 2)
            noise = rng.normal(0, 1, n)
            codes = {name: rng.integers(0, len(values), n) for name, values in CATEGORIES.items()}
            price = np.round(
                size * 3500 * np.exp(-0.004 * age) * np.exp(-0.015 * distance) * rng.lognormal(0, 0.1, n), -2
            )

            def with_missing(values, share, n=n):
                return pa.array(values, mask=rng.random(n) < share)

            def category(name, share, n=n, codes=codes):
                dictionary = pa.array(CATEGORIES[name])
                indices = pa.array(codes[name].astype(np.int32), mask=rng.random(n) < share)
                return pa.DictionaryArray.from_arrays(indices, dictionary).cast(pa.string())

            table = pa.table(
                {
                    "size_sqm": size,
                    "rooms": rooms,
                    "age_years": with_missing(age, 0.03),
                    "floor": floor,
                    "distance_km": with_missing(distance, 0.02),
                    "latitude": lat,
                    "longitude": lon,
                    "lot_sqm": with_missing(lot, 0.05),
                    "yearly_tax": tax,
                    "score": noise,
                    "region": category("region", 0.02),
                    "property_type": category("property_type", 0.0),
                    "energy_label": category("energy_label", 0.01),
                    "agency": category("agency", 0.0),
                    TARGET: with_missing(price, 0.01),
                }
            )
            if writer is None:
                writer = pa_csv.CSVWriter(str(tmp), table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    tmp.rename(path)


# --- the steps, each run in its own process -----------------------------------------------------------------------


def run_step(step: str, csv_path: Path, work: Path) -> dict:
    """Runs one step after its imports; returns seconds, rows and this process's peak RSS."""
    import pandas as pd
    import pyarrow.csv as pa_csv

    from components._common.datasets import read_dataset, write_dataset

    if step == "ingest":
        from components.ingest_data.logic import read_source
    elif step == "validate":
        from components.validate_data.logic import validate_dataset
    elif step == "prepare":
        from components.prepare_data.logic import prepare
        from model_bundle.profile import build_profile

    result: dict = {}
    started = time.perf_counter()
    if step == "pyarrow":
        table = pa_csv.read_csv(csv_path)
        rows, result["arrow_nbytes"] = table.num_rows, table.nbytes
    elif step == "pandas":
        rows = len(pd.read_csv(csv_path))
    elif step == "ingest":
        ingested = read_source(str(csv_path))
        info = write_dataset(ingested.table, work / "dataset.parquet")
        rows = info["rows"]
    elif step == "validate":
        validation = validate_dataset(read_dataset(work / "dataset.parquet"), target=TARGET, task="auto")
        if not validation.passed:
            raise SystemExit(f"validation failed: {[finding.message for finding in validation.failures]}")
        rows, result["task"] = validation.schema["rows"], validation.task
    elif step == "prepare":
        frame = read_dataset(work / "dataset.parquet")
        rows = len(frame)
        prepared = prepare(frame, TARGET, "regression")
        del frame
        write_dataset(prepared.train, work / "train.parquet")
        write_dataset(prepared.test, work / "test.parquet")
        build_profile(prepared.train, TARGET)  # the reference profile, as the component records it
        result["dropped_missing_target"] = prepared.dropped_missing_target
        result["dropped_duplicates"] = prepared.dropped_duplicates
    else:
        raise SystemExit(f"unknown step {step!r}")
    result["seconds"] = time.perf_counter() - started
    result["rows"] = rows
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    return result


def measure(step: str, csv_path: Path, work: Path) -> dict:
    completed = subprocess.run(
        [sys.executable, __file__, "--step", step, "--csv", str(csv_path), "--work", str(work)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    if completed.returncode != 0:
        sys.exit(f"step {step} failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-5000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--data-dir", type=Path, help="where the generated CSV is kept (default: a temp directory)")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory (CSV and Parquet files)")
    parser.add_argument("--write-docs", action="store_true", help="also write the figures into docs/benchmarks.md")
    parser.add_argument("--step", choices=STEPS, help=argparse.SUPPRESS)
    parser.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        print(json.dumps(run_step(args.step, args.csv, args.work)))
        return

    base = args.data_dir or Path(tempfile.mkdtemp(prefix="bench-data-"))
    base.mkdir(parents=True, exist_ok=True)
    csv_path = base / f"bench-{args.rows}.csv"
    generated_s = 0.0
    if not csv_path.exists():
        started = time.perf_counter()
        generate(csv_path, args.rows)
        generated_s = time.perf_counter() - started
    work = Path(tempfile.mkdtemp(prefix="work-", dir=base))
    try:
        results = {step: measure(step, csv_path, work) for step in STEPS}
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
            if args.data_dir is None:
                shutil.rmtree(base, ignore_errors=True)

    floor = results["pyarrow"]
    arrow_mb = floor["arrow_nbytes"] / 2**20
    pipeline = ("ingest", "validate", "prepare")
    total_s = sum(results[step]["seconds"] for step in pipeline)
    peak_mb = max(results[step]["peak_rss_mb"] for step in pipeline)
    csv_mb = csv_path.stat().st_size / 2**20 if csv_path.exists() else None
    print(f"{args.rows} rows, 15 columns; CSV {csv_mb or 0:.0f} MB; Arrow table {arrow_mb:.0f} MB")
    print(f"{'step':<12}{'seconds':>10}{'rows/s':>14}{'peak RSS MB':>14}")
    for step in STEPS:
        r = results[step]
        print(f"{step:<12}{r['seconds']:>10.2f}{r['rows'] / r['seconds']:>14,.0f}{r['peak_rss_mb']:>14.0f}")
    time_ratio = total_s / floor["seconds"]
    rss_ratio = peak_mb / arrow_mb
    print(f"{'i+v+p':<12}{total_s:>10.2f}{args.rows / total_s:>14,.0f}{peak_mb:>14.0f}")
    verdict = {True: "holds", False: "FAILS"}
    goals = [
        f"goal: i+v+p wall <= 3x pyarrow read: {total_s:.2f} s = {time_ratio:.1f}x -> {verdict[time_ratio <= 3]}",
        f"goal: peak RSS <= 3x Arrow table: {peak_mb:.0f} MB = {rss_ratio:.1f}x -> {verdict[rss_ratio <= 3]}",
    ]
    print("\n".join(goals))
    if args.write_docs:
        setup = (
            f"{args.rows:,} rows, 15 columns: a CSV of {csv_mb or 0:.0f} MB, an Arrow table of {arrow_mb:.0f} MB. "
            "Each step runs in its own process, as in a pipeline, and is timed after its imports."
        )
        rows = [
            [STEP_NAMES[step], f"{r['seconds']:.2f}", f"{r['rows'] / r['seconds']:,.0f}", f"{r['peak_rss_mb']:,.0f}"]
            for step, r in results.items()
        ]
        rows.append(["ingest + validate + prepare", f"{total_s:.2f}", f"{args.rows / total_s:,.0f}", f"{peak_mb:,.0f}"])
        table = _docs.markdown_table(["step", "seconds", "rows/s", "peak RSS MB"], rows)
        body = "\n".join([setup, "", table, "", *(f"- {goal}" for goal in goals), "", WHERE_TIME_GOES])
        print(f"wrote {_docs.write_section('Large data', body, _docs.command_line())}")
    print(
        json.dumps(
            {
                "rows": args.rows,
                "csv_mb": round(csv_mb or 0, 1),
                "arrow_mb": round(arrow_mb, 1),
                "generated_s": round(generated_s, 2),
                "steps": {
                    step: {key: round(value, 3) if isinstance(value, float) else value for key, value in r.items()}
                    for step, r in results.items()
                },
                "total_s": round(total_s, 2),
                "peak_rss_mb": round(peak_mb, 1),
                "time_ratio": round(time_ratio, 2),
                "rss_ratio": round(rss_ratio, 2),
                "time_goal_holds": time_ratio <= 3,
                "rss_goal_holds": rss_ratio <= 3,
            }
        )
    )


if __name__ == "__main__":
    main()
