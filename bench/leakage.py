"""Cost and calibration of validate_data's leakage check (components/validate_data/leakage.py).

    .venv/bin/python bench/leakage.py [--rows 10000 1000000] [--write-docs]  # wall time and peak memory
    .venv/bin/python bench/leakage.py --tables                     # its scores on real tables and planted leaks

Cost: per row count, a synthetic table of 15 columns (numbers, integers, categories, missing values, a numeric
target) is generated in a fresh process, then the check runs on it as validate_data runs it; printed are its wall
time, the peak of memory allocated during it (tracemalloc, which numpy reports to) and the growth of the process's
peak RSS; beside it, the baseline: the schema inference validate_data runs on the same table anyway. The check works
on a bounded sample, so its cost should barely grow with the rows, while the schema's grows with them.

Calibration: the tables bundled with scikit-learn and statsmodels (no download), the project's sample data, and
the same sample with leaks planted; per table, the best single-feature score, the whole-table score, the largest
fall of that score when one feature is dropped (measured whatever the whole score; "-": no feature weighs
``COLLAPSE`` in permutation importance, so none is refitted) and what the check names. Last line of each mode: one
JSON line. ``--write-docs`` also writes the cost table into docs/benchmarks.md ("Leakage check (validate_data)");
the calibration is tabled beside the thresholds it explains, in components/validate_data/leakage.py.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench import _docs  # noqa: E402

TARGET = "price"


def synthetic(rows: int, seed: int = 7):
    """15 columns like a listings table: 9 numeric (3 with missing values), 1 boolean, 4 categorical, the price."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    size = np.round(np.clip(rng.lognormal(np.log(95), 0.35, rows), 25, 400), 1)
    age = np.clip(rng.gamma(2.0, 18.0, rows), 0, 150).round()
    distance = np.round(np.clip(rng.exponential(6.0, rows), 0.2, 45), 2)
    frame = pd.DataFrame(
        {
            "size_sqm": size,
            "rooms": np.clip(np.round(size / 28 + rng.normal(0, 0.8, rows)), 1, 10).astype(np.int64),
            "age_years": age,
            "floor": rng.integers(0, 30, rows),
            "distance_km": distance,
            "latitude": np.round(rng.uniform(51.8, 52.6, rows), 6),
            "longitude": np.round(rng.uniform(4.2, 5.4, rows), 6),
            "lot_sqm": np.round(rng.gamma(2.0, 150.0, rows), 1),
            "yearly_tax": np.round(rng.normal(1500, 400, rows), 2),
            "renovated": rng.random(rows) < 0.3,
            "region": rng.choice([f"region_{i:02d}" for i in range(12)], rows),
            "property_type": rng.choice(["apartment", "house", "townhouse", "studio", "villa"], rows),
            "energy_label": rng.choice(list("ABCDEFG"), rows),
            "agency": rng.choice([f"agency_{i:03d}" for i in range(150)], rows),
            TARGET: np.round(
                size * 3500 * np.exp(-0.004 * age) * np.exp(-0.015 * distance) * rng.lognormal(0, 0.1, rows), -2
            ),
        }
    )
    for column, share in (("age_years", 0.03), ("distance_km", 0.02), ("lot_sqm", 0.05)):
        frame.loc[rng.random(rows) < share, column] = np.nan
    return frame


def run_cost(rows: int) -> dict:
    """In this process: the check on ``rows`` synthetic rows, as validate_data runs it."""
    from components.validate_data.leakage import check_leakage
    from components.validate_data.logic import LEAKAGE_SEED, resolve_task
    from model_bundle import infer_feature_types
    from model_bundle.schema import infer

    frame = synthetic(rows)
    task = resolve_task(frame[TARGET], "auto")
    features = {f["name"]: f["type"] for f in infer_feature_types(frame, exclude=[TARGET])}
    # A first check on a small table loads what scikit-learn loads lazily: its memory is no cost of the check.
    check_leakage(synthetic(500), TARGET, task, features, seed=LEAKAGE_SEED)
    rss_before = _reset_peak_rss()
    tracemalloc.start()
    started = time.perf_counter()
    check = check_leakage(frame, TARGET, task, features, seed=LEAKAGE_SEED)
    seconds = time.perf_counter() - started
    peak_traced = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    rss_after = _status_mb("VmHWM")
    # The baseline beside it: what validate_data already spends on the same table (its schema), in the same run.
    started = time.perf_counter()
    infer(frame, TARGET)
    schema_seconds = time.perf_counter() - started
    return {
        "rows": rows,
        "columns": frame.shape[1],
        "sampled_rows": check.rows,
        "seconds": round(seconds, 3),
        "schema_seconds": round(schema_seconds, 3),
        "peak_allocated_mb": round(peak_traced, 1),
        "peak_rss_growth_mb": round(rss_after - rss_before, 1),
        "frame_mb": round(frame.memory_usage(deep=True).sum() / 2**20, 1),
        "suspects": [feature.name for feature in check.suspects],
    }


def _status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024  # kB
    raise SystemExit(f"/proc/self/status has no {key}")


def _reset_peak_rss() -> float:
    """Resets the process's peak RSS to its current RSS (Linux: clear_refs 5), which it returns in MB: the peak read
    after the check is then the check's, not the table generation's."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_mb("VmRSS")


def cost(row_counts: list[int], write_docs: bool = False) -> None:
    results = []
    for rows in row_counts:
        completed = subprocess.run(
            [sys.executable, __file__, "--cost-of", str(rows)],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            check=False,
        )
        if completed.returncode != 0:
            sys.exit(f"{rows} rows failed:\n{completed.stderr[-5000:]}")
        results.append(json.loads(completed.stdout.strip().splitlines()[-1]))
    print(
        f"{'rows':>10}{'frame MB':>10}{'sampled':>9}{'check s':>9}{'schema s':>10}{'peak alloc MB':>15}"
        f"{'RSS growth MB':>15}"
    )
    for r in results:
        print(
            f"{r['rows']:>10,}{r['frame_mb']:>10.0f}{r['sampled_rows']:>9}{r['seconds']:>9.2f}"
            f"{r['schema_seconds']:>10.2f}{r['peak_allocated_mb']:>15.1f}{r['peak_rss_growth_mb']:>15.1f}"
        )
    if write_docs:
        written = _docs.write_section("Leakage check (validate_data)", cost_markdown(results), _docs.command_line())
        print(f"wrote {written}")
    print(json.dumps(results))


def cost_markdown(results: list[dict]) -> str:
    """The cost figures as docs/benchmarks.md shows them."""
    header = [
        "rows",
        "table MB",
        "rows sampled",
        "check s",
        "schema inference s (baseline)",
        "peak allocated MB",
        "RSS growth MB",
    ]
    rows = [
        [
            f"{r['rows']:,}",
            f"{r['frame_mb']:.0f}",
            f"{r['sampled_rows']:,}",
            f"{r['seconds']:.2f}",
            f"{r['schema_seconds']:.2f}",
            f"{r['peak_allocated_mb']:.1f}",
            f"{r['peak_rss_growth_mb']:.1f}",
        ]
        for r in results
    ]
    setup = (
        "A synthetic 15-column table per row count, the check as validate_data runs it, in a fresh process each; "
        "beside it, the baseline of the same run: the schema inference validate_data runs on the table anyway."
    )
    note = (
        "The check works on a bounded, seeded sample, so its cost should barely grow with the rows. Its calibration "
        "(scores on real tables and planted leaks) is `.venv/bin/python bench/leakage.py --tables`, tabled in "
        "`components/validate_data/leakage.py`."
    )
    return "\n".join([setup, "", _docs.markdown_table(header, rows), "", note])


def real_tables() -> dict:
    """name -> (frame, target): bundled with installed packages, nothing downloaded."""
    import pandas as pd
    from sklearn import datasets

    from components.ingest_data.logic import read_source

    houses = read_source("sample://house-prices?rows=2000&seed=7").frame
    tables = {
        "sample house-prices (price)": (houses, "price"),
        "sample house-prices (energy_label)": (houses, "energy_label"),
    }
    for name in ("iris", "wine", "breast_cancer", "digits", "diabetes"):
        loaded = getattr(datasets, f"load_{name}")(as_frame=True)
        target = loaded.target
        if getattr(loaded, "target_names", None) is not None:
            target = target.map(dict(enumerate(loaded.target_names)))
        tables[f"sklearn {name}"] = (loaded.data.assign(target=target), "target")
    import importlib

    for name in ("cancer", "engel", "grunfeld", "modechoice", "star98", "fair", "anes96", "randhie"):
        loaded = importlib.import_module(f"statsmodels.datasets.{name}").load_pandas()
        endog = loaded.endog_name if isinstance(loaded.endog_name, str) else loaded.endog_name[0]
        tables[f"statsmodels {name} ({endog})"] = (pd.DataFrame(loaded.data), endog)
    return tables


def planted_leaks(houses) -> dict:
    """The sample data with a leak planted, and a table whose target is the sum of two of its columns."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1)
    price = houses["price"]
    costs = pd.DataFrame({"materials": rng.gamma(4, 500, 1500), "labour": rng.gamma(4, 500, 1500)})
    costs["floor_area"], costs["weeks"] = rng.normal(100, 20, 1500), rng.integers(1, 30, 1500)
    return {
        "LEAK price + 10% noise": (
            houses.assign(price_eur=price * 0.92 + rng.normal(0, 0.1 * price.std(), len(price))),
            "price",
        ),
        "LEAK log(price)": (houses.assign(log_price=np.log(price)), "price"),
        "LEAK total = materials + labour": (costs.assign(total=costs["materials"] + costs["labour"]), "total"),
    }


def calibrate() -> None:
    from unittest import mock

    from components.validate_data import leakage
    from components.validate_data.logic import LEAKAGE_SEED, resolve_task
    from model_bundle import infer_feature_types

    tables = real_tables()
    tables.update(planted_leaks(tables["sample house-prices (price)"][0]))
    print(f"{'table (target)':<44}{'task':<16}{'rows':>6}  {'best alone':<36}{'whole':>7}{'fall':>7}  suspected")
    results = []
    for name, (frame, target) in tables.items():
        task = resolve_task(frame[target], "auto")
        features = {f["name"]: f["type"] for f in infer_feature_types(frame, exclude=[target])}
        check = leakage.check_leakage(frame, target, task, features, seed=LEAKAGE_SEED)
        best = max(check.features, key=lambda feature: feature.alone)
        # How far the whole fit falls without a feature had it been near perfect: the too-good-fit measure's second
        # condition, measured on every table.
        with mock.patch.dict(leakage.NEAR_PERFECT, {task: -float("inf")}):
            forced = leakage.check_leakage(frame, target, task, features, seed=LEAKAGE_SEED)
        fall = max((forced.whole - f.without for f in forced.features if f.without is not None), default=None)
        named = {feature.name: list(feature.suspected_by) for feature in check.suspects}
        print(
            f"{name:<44}{task:<16}{check.rows:>6}  {best.alone:>6.3f} {best.name[:28]:<29}{check.whole:>7.3f}"
            f"{'-' if fall is None else f'{fall:.3f}':>7}  {named or '-'}"
        )
        results.append(
            {
                "table": name,
                "task": task,
                "rows": check.rows,
                "best_alone": round(best.alone, 4),
                "best_feature": best.name,
                "whole": round(check.whole, 4),
                "fall": None if fall is None else round(fall, 4),
                "suspects": named,
            }
        )
    print(json.dumps(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--tables", action="store_true", help="scores on real tables and planted leaks")
    parser.add_argument(
        "--write-docs", action="store_true", help="also write the cost table into docs/benchmarks.md (not --tables)"
    )
    parser.add_argument("--cost-of", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tables and args.write_docs:
        parser.error("--write-docs writes the cost figures; the calibration of --tables is tabled in leakage.py")
    if args.cost_of:
        print(json.dumps(run_cost(args.cost_of)))
    elif args.tables:
        calibrate()
    else:
        cost(args.rows, args.write_docs)


if __name__ == "__main__":
    main()
